import { describe, expect } from 'vitest';
import { verifyHashChain } from '../../../lib/audit/hash-chain-verifier.js';
import { AuditWriter } from '../../../lib/audit/writer.js';
import { withBudgets, type BudgetedAuditWriter } from '../../../lib/budget/charges.js';
import type { AuditEntry } from '../../../lib/audit/entry.js';
import { revealTestFor } from '../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE, type RevealHarness, type SeededValue } from '../../support/reveal-harness.js';

const it = revealTestFor();

// The file's shared harness, bound once for the helpers below.
let harness: RevealHarness;
let ip: SeededValue;
it.beforeAll(({ harness: shared, sample }) => {
  harness = shared;
  ip = sample.ip;
});

async function reveal(sub = 'alice') {
  return harness.app.inject({
    method: 'POST',
    url: '/reveal',
    headers: bearer(await harness.token(sub, ['investigator'])),
    payload: { tokens: [ip.token], purpose: PURPOSE },
  });
}

describe('audit log writes', () => {
  it('keeps one valid chain under 50 concurrent reveals, from this app and a second instance', async () => {
    const other = await harness.buildApp();
    const responses = await Promise.all(
      Array.from({ length: 50 }, async (_, index) => {
        const app = index % 2 === 0 ? harness.app : other;
        return app.inject({
          method: 'POST',
          url: '/reveal',
          headers: bearer(await harness.token(`user-${index}`, ['investigator'])),
          payload: { tokens: [ip.token], purpose: PURPOSE },
        });
      }),
    );
    expect(responses.map((response) => response.statusCode)).toEqual(Array(50).fill(200));
    const rows = await auditRows(harness.testDb);
    expect(new Set(rows.map((row) => row.request_id)).size).toBe(rows.length);
    expect(rows.map((row) => row.seq)).toEqual(rows.map((_, index) => index + 1));
    expect(await verifyHashChain(harness.testDb.owner.pool)).toMatchObject({ ok: true, checked: rows.length });
  });

  it('fails closed with 503 and reveals nothing when the audit row cannot be written', async () => {
    await harness.testDb.owner.pool.query('REVOKE INSERT ON audit_log FROM reveal_api');
    try {
      const before = (await auditRows(harness.testDb)).length;
      const response = await reveal();
      expect(response.statusCode).toBe(503);
      expect(response.json()).toEqual({ error: { code: 'audit_unavailable', message: expect.any(String) } });
      expect(response.body).not.toContain(ip.value);
      expect(response.body).not.toMatch(/permission|audit_log|INSERT|at .*\.ts/);
      expect(await auditRows(harness.testDb)).toHaveLength(before);
    } finally {
      await harness.testDb.owner.pool.query('GRANT INSERT ON audit_log TO reveal_api');
    }
    expect((await reveal()).statusCode).toBe(200);
  });

  it('fails closed with 503 when the audit log is locked, instead of hanging', async () => {
    const locker = await harness.testDb.owner.pool.connect();
    try {
      await locker.query('BEGIN; LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
      const app = await harness.buildApp({ AUDIT_LOCK_TIMEOUT_MS: '300' });
      const response = await app.inject({
        method: 'POST',
        url: '/reveal',
        headers: bearer(await harness.token('alice', ['investigator'])),
        payload: { tokens: [ip.token], purpose: PURPOSE },
      });
      expect(response.statusCode).toBe(503);
      expect(response.body).not.toContain(ip.value);
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
  });

  it('links to rows another writer committed since its own last batch', async () => {
    const entry = (requestId: string): AuditEntry => ({
      action: 'reveal', actor: 'writer-test', roles: [], clientAddress: null, requestId, purpose: PURPOSE, ticket: null,
      tokens: [ip.token], fieldCounts: {}, outcome: 'allowed', reason: null,
    });
    const first = new AuditWriter(harness.database.pool);
    const second = new AuditWriter(harness.database.pool);
    const a = await first.append(entry('a'));
    const b = await second.append(entry('b'));
    // `first` still remembers its own row as the head: it must notice b and link after it.
    const c = await first.append(entry('c'));
    const d = await first.append(entry('d'));
    expect([b - a, c - b, d - c]).toEqual([1, 1, 1]);
    expect(await verifyHashChain(harness.testDb.owner.pool)).toMatchObject({ ok: true, head: { seq: d } });
  });

  it('stores quotes, backslashes and non-ASCII text exactly as they were hashed', async () => {
    const writer = new AuditWriter(harness.database.pool);
    const awkward = ["it's", 'back\\slash \\x00', '$$; DROP TABLE audit_log; --', 'ünïcødé 🔐', '"quoted"'];
    for (const text of awkward) {
      await writer.append({
        action: 'reveal', actor: text, roles: [text], clientAddress: null, requestId: text, purpose: text, ticket: text,
        tokens: [text, ip.token], fieldCounts: { [text]: 1 }, outcome: 'allowed', reason: text,
      });
    }
    const rows = await auditRows(harness.testDb);
    expect(rows.slice(-awkward.length).map((row) => row.actor)).toEqual(awkward);
    expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);
  });

  it('records refusals in the same chain', async () => {
    await harness.app.inject({ method: 'POST', url: '/reveal', payload: { tokens: [ip.token], purpose: PURPOSE } });
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ outcome: 'unauthenticated', tokens: [], reason: expect.stringMatching(/^token_missing sent: /) });
    expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);
  });

  describe('one entry the database refuses fails alone (no entry can fail its neighbours)', () => {
    const entry = (actor: string, fieldCounts: Record<string, number> = { ip: 1 }): AuditEntry => ({
      action: 'reveal', actor, roles: ['investigator'], clientAddress: '127.0.0.1', requestId: `req-${actor}`, purpose: PURPOSE, ticket: null,
      tokens: [ip.token], fieldCounts, outcome: 'allowed', reason: 'revealed=1',
    });
    const charged = (actor: string, fieldCounts?: Record<string, number>) => ({
      charge: { actor, amount: 1, limits: [{ budget: 'hour' as const, limit: 100 }] },
      refused: () => entry(actor, fieldCounts),
    });

    // The poisons bypass every HTTP rule (subject rule, validation): they reach the writer as they are.
    // Audit text columns are made storable by linkEntries; what is not: a budget actor and a field_counts key (jsonb).
    it.each([
      ['a budget actor holding NUL', (writer: BudgetedAuditWriter) => writer.appendCharged(entry('poison\u0000actor'), charged('poison\u0000actor'))],
      ['a budget actor holding a lone surrogate', (writer: BudgetedAuditWriter) => writer.appendCharged(entry('poison\ud800actor'), charged('poison\ud800actor'))],
      ['a field_counts key holding NUL', (writer: BudgetedAuditWriter) => writer.appendCharged(entry('poison-counts', { 'ip\u0000': 1 }), charged('poison-counts', { 'ip\u0000': 1 }))],
    ])('20 concurrent charged appends with %s among them: 19 commit, only the poisoned one fails', async (_name, poisoned) => {
      const writer = new AuditWriter(harness.database.pool, withBudgets());
      const run = `iso-${Math.random().toString(36).slice(2, 8)}`;
      // The first append starts a transaction at once; the other 19 (the poison among them) queue and share the next one.
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, index) => (index === 10 ? poisoned(writer) : writer.appendCharged(entry(`${run}-${index}`), charged(`${run}-${index}`)))),
      );
      const failed = results.flatMap((result, index) => (result.status === 'rejected' ? [index] : []));
      expect(failed).toEqual([10]);
      const rows = (await auditRows(harness.testDb)).filter((row) => row.actor?.startsWith(run));
      expect(rows).toHaveLength(19);
      const usage = await harness.testDb.owner.pool.query('SELECT actor FROM reveal_budget_usage WHERE actor LIKE $1', [`${run}-%`]);
      expect(usage.rowCount).toBe(19);
      expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);
      await writer.flush();
    });

    it('20 concurrent uncharged appends with a poisoned field_counts key among them: 19 commit', async () => {
      const writer = new AuditWriter(harness.database.pool);
      const run = `plain-${Math.random().toString(36).slice(2, 8)}`;
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, index) => writer.append(entry(`${run}-${index}`, index === 10 ? { 'device_id\u0000': 1 } : { ip: 1 }))),
      );
      expect(results.flatMap((result, index) => (result.status === 'rejected' ? [index] : []))).toEqual([10]);
      expect((await auditRows(harness.testDb)).filter((row) => row.actor?.startsWith(run))).toHaveLength(19);
      expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);
    });
  });
});
