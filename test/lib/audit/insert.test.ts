import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTransaction } from '../../../db/transaction.js';
import type { AuditEntry } from '../../../lib/audit/entry.js';
import { insertAudit } from '../../../lib/audit/insert.js';
import { verifyHashChain } from '../../../lib/audit/hash-chain-verifier.js';
import { AUDIT_CHAIN_LOCK_ID } from '../../../lib/audit/sql.js';
import { AuditWriter } from '../../../lib/audit/writer.js';
import type { Database } from '../../../db/client.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';

let testDb: TestDatabase;
let reveal: Database;

function entry(actor: string, reason: string | null = null): AuditEntry {
  return { action: 'erase', actor, roles: ['privacy'], clientAddress: null, requestId: null, purpose: 'insert test purpose', ticket: null, tokens: [], fieldCounts: {}, outcome: 'allowed', reason };
}

async function rowsOf(actor: string): Promise<{ seq: string; reason: string | null }[]> {
  return (await testDb.owner.pool.query<{ seq: string; reason: string | null }>('SELECT seq, reason FROM audit_log WHERE actor = $1 ORDER BY seq', [actor])).rows;
}

beforeAll(async () => {
  testDb = await createTestDatabase();
  reveal = testDb.as('reveal_api');
});
afterAll(async () => {
  await testDb?.drop();
});

describe('insertAudit', () => {
  it('commits rows in a transaction of its own when given a pool, linked to the chain', async () => {
    const seqs = await insertAudit(reveal.pool, [entry('own-1'), entry('own-2')]);
    expect(seqs).toHaveLength(2);
    expect(seqs[1]).toBe((seqs[0] ?? 0) + 1);
    expect((await rowsOf('own-1')).map((row) => Number(row.seq))).toEqual([seqs[0]]);
    expect((await verifyHashChain(testDb.owner.pool)).ok).toBe(true);
  });

  it("joins the caller's transaction: the row rolls back with the change it records", async () => {
    await expect(
      withTransaction(reveal.pool, async (client) => {
        await insertAudit(client, entry('rolled-back'));
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    expect(await rowsOf('rolled-back')).toEqual([]);

    await withTransaction(reveal.pool, (client) => insertAudit(client, entry('committed')));
    expect(await rowsOf('committed')).toHaveLength(1);
    expect((await verifyHashChain(testDb.owner.pool)).ok).toBe(true);
  });

  it('keeps one chain when the group-commit writer and direct inserts interleave', async () => {
    const writer = new AuditWriter(reveal.pool);
    await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        index % 2 === 0 ? writer.append(entry(`mixed-${index}`)) : withTransaction(reveal.pool, (client) => insertAudit(client, entry(`mixed-${index}`))),
      ),
    );
    await writer.flush();
    const { rows } = await testDb.owner.pool.query<{ n: string }>("SELECT count(*) AS n FROM audit_log WHERE actor LIKE 'mixed-%'");
    expect(Number(rows[0]?.n)).toBe(40);
    expect((await verifyHashChain(testDb.owner.pool)).ok).toBe(true);
  });

  it('fails after the lock timeout instead of hanging while another transaction holds the chain lock', async () => {
    const holder = await testDb.owner.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_CHAIN_LOCK_ID]);
      await expect(insertAudit(reveal.pool, entry('blocked'), { lockTimeoutMs: 200 })).rejects.toThrow(/lock timeout|statement timeout/);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    expect(await rowsOf('blocked')).toEqual([]);
  });
});
