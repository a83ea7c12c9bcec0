import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../../lib/audit/entry.js';
import { AuditWriter } from '../../../lib/audit/writer.js';
import { withBudgets } from '../../../lib/budget/charges.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';

let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  await testDb?.drop();
});

function entry(requestId: string, charged = false): AuditEntry {
  return { action: 'reveal', actor: charged ? 'budgeted' : 'plain', roles: [], clientAddress: null, requestId, purpose: 'seq test', ticket: null, tokens: [], fieldCounts: {}, outcome: 'allowed', reason: null };
}

describe('group commit hands every submitter its own row', () => {
  it('each append resolves with the seq of the row holding its own entry, across groups, charged or not, from two writers', async () => {
    const pool = testDb.as('reveal_api').pool;
    const writers = [new AuditWriter(pool, withBudgets()), new AuditWriter(pool, withBudgets())];
    const limits = [{ budget: 'day' as const, limit: 1_000_000 }];
    const submitted = await Promise.all(
      Array.from({ length: 120 }, async (_, index) => {
        const writer = writers[index % 2]!;
        const requestId = `req-${index}`;
        const seq =
          index % 3 === 0
            ? (await writer.appendCharged(entry(requestId, true), { charge: { actor: 'budgeted', amount: 1, limits }, refused: () => entry(`${requestId}-refused`, true) })).seq
            : await writer.append(entry(requestId));
        return { requestId, seq };
      }),
    );
    for (const writer of writers) await writer.close();
    const { rows } = await testDb.owner.pool.query<{ seq: string; request_id: string }>('SELECT seq, request_id FROM audit_log');
    const stored = new Map(rows.map((row) => [Number(row.seq), row.request_id]));
    expect(new Set(submitted.map((item) => item.seq)).size).toBe(120);
    for (const { requestId, seq } of submitted) expect(stored.get(seq), requestId).toBe(requestId);
  });
});
