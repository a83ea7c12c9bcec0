import type { FastifyRequest } from 'fastify';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../../../lib/audit/entry.js';
import { AuditWriter } from '../../../../lib/audit/writer.js';
import { withBudgets, type BudgetedAuditWriter } from '../../../../lib/budget/charges.js';
import { Auditor, outcomeOf, type Attempt } from '../../../../services/reveal-api/audit/auditor.js';
import { RefusalSampler } from '../../../../services/reveal-api/audit/refusal-sampler.js';
import { RefusalWindows } from '../../../../services/reveal-api/audit/refusal-windows.js';
import { createRevealMetrics } from '../../../../services/reveal-api/metrics.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';

describe('outcomeOf', () => {
  it.each([
    [{ permitted: 3, forbidden: 0, invalid: 0 }, 'allowed'],
    [{ permitted: 1, forbidden: 1, invalid: 0 }, 'partial'],
    [{ permitted: 1, forbidden: 0, invalid: 2 }, 'partial'],
    [{ permitted: 0, forbidden: 2, invalid: 0 }, 'denied'],
    [{ permitted: 0, forbidden: 1, invalid: 1 }, 'denied'],
    [{ permitted: 0, forbidden: 0, invalid: 1 }, 'invalid'],
  ] as const)('judges %o as %s', (tally, outcome) => {
    expect(outcomeOf(tally)).toBe(outcome);
  });
});

describe('the Auditor\'s two doors', () => {
  let testDb: TestDatabase;
  let pool: pg.Pool;
  let writer: BudgetedAuditWriter;
  let auditor: Auditor;
  const metrics = createRevealMetrics();

  beforeAll(async () => {
    testDb = await createTestDatabase();
    pool = testDb.as('reveal_api').pool;
    writer = new AuditWriter(pool, withBudgets());
    const sampler = new RefusalSampler({ windowMs: 60_000, store: new RefusalWindows(pool) });
    auditor = new Auditor({ writer, pool, metrics, sampler });
  });
  afterAll(async () => {
    await writer?.close();
    await testDb?.drop();
  });

  /** The parts of a request the Auditor reads (a verified caller on an audited route). */
  function requestOf(id: string): FastifyRequest {
    return {
      id,
      ip: '127.0.0.1',
      body: undefined,
      principal: { sub: 'auditor-test', roles: ['investigator'] },
      routeOptions: { config: { auditAction: 'erase' } },
      audited: false,
      auditSeq: undefined,
    } as unknown as FastifyRequest;
  }

  const attempt = (reason: string): Attempt => ({ outcome: 'allowed', reason, tokens: [], purpose: 'auditor test', ticket: null });
  const rowsWith = async (reason: string) => (await testDb.owner.pool.query<{ seq: string }>('SELECT seq FROM audit_log WHERE reason = $1', [reason])).rows.map((row) => Number(row.seq));

  it('record: the row is committed before it resolves, its seq kept on the request', async () => {
    const request = requestOf('record-1');
    const recorded = await auditor.record(request, attempt('door one'));
    expect(await rowsWith('door one')).toEqual([recorded.seq]);
    expect(request.audited).toBe(true);
    expect(request.auditSeq).toBe(recorded.seq);
    expect(recorded.decision).toEqual({ granted: true, standings: [] });
  });

  it('record with a charge: the refused attempt is written instead when the budget does not fit', async () => {
    const charge = { actor: 'auditor-test', amount: 2, limits: [{ budget: 'day' as const, limit: 3 }] };
    const refused = () => ({ ...attempt('door one refused'), outcome: 'rate_limited' as const });
    const first = await auditor.record(requestOf('charged-1'), attempt('door one charged'), { charge: { charge, refused } });
    expect(first.decision.granted).toBe(true);
    const second = await auditor.record(requestOf('charged-2'), attempt('door one charged'), { charge: { charge, refused } });
    expect(second.decision).toMatchObject({ granted: false, exhausted: { budget: 'day', remaining: 1 } });
    expect(await rowsWith('door one charged')).toEqual([first.seq]);
    expect(await rowsWith('door one refused')).toEqual([second.seq]);
  });

  it('commit: the change and its row commit together, and a failed change leaves neither', async () => {
    await testDb.owner.pool.query('CREATE TABLE IF NOT EXISTS auditor_changes (note text); GRANT INSERT, SELECT ON auditor_changes TO reveal_api');
    const request = requestOf('commit-1');
    const value = await auditor.commit(request, async ({ client }) => {
      await client.query("INSERT INTO auditor_changes VALUES ('kept')");
      return { value: 'done', attempt: attempt('door two') };
    });
    expect(value).toBe('done');
    expect(await rowsWith('door two')).toEqual([request.auditSeq]);

    const failing = requestOf('commit-2');
    await expect(
      auditor.commit(failing, async ({ client, add }) => {
        await client.query("INSERT INTO auditor_changes VALUES ('undone')");
        await add({ ...entryOf('door two system row') });
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    expect(await rowsWith('door two system row')).toEqual([]);
    expect(failing.audited).toBe(false);
    const { rows } = await testDb.owner.pool.query<{ note: string }>('SELECT note FROM auditor_changes ORDER BY note');
    expect(rows.map((row) => row.note)).toEqual(['kept']);
  });

  it('commit: a refusal step commits its row, then its error is thrown', async () => {
    const request = requestOf('commit-3');
    await expect(auditor.commit(request, async () => ({ attempt: { ...attempt('door two refusal'), outcome: 'denied' }, error: new Error('refused') }))).rejects.toThrow('refused');
    expect(await rowsWith('door two refusal')).toEqual([request.auditSeq]);
    expect(request.audited).toBe(true);
  });

  it('commit without a request: rows the change adds commit with it; an attempt has nobody to name and commits nothing', async () => {
    const value = await auditor.commit(undefined, async ({ add }) => {
      await add(entryOf('system change'));
      return { value: 1, attempt: undefined };
    });
    expect(value).toBe(1);
    expect(await rowsWith('system change')).toHaveLength(1);
    await expect(
      auditor.commit(undefined, async ({ add }) => {
        await add(entryOf('system change with attempt'));
        return { value: 2, attempt: attempt('nobody') };
      }),
    ).rejects.toThrow(/from its request/);
    expect(await rowsWith('system change with attempt')).toEqual([]);
  });
});

function entryOf(reason: string): AuditEntry {
  return { action: 'reveal.expire', actor: null, roles: [], clientAddress: null, requestId: null, purpose: null, ticket: null, tokens: [], fieldCounts: {}, outcome: 'expired', reason };
}
