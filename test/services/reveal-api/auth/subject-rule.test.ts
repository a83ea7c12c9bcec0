import { describe, expect } from 'vitest';
import { verifyHashChain } from '../../../../lib/audit/hash-chain-verifier.js';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE, type RevealHarness, type SeededValue } from '../../../support/reveal-harness.js';

const it = revealTestFor();

/** `from`: the client address (refusals without a verified identity are accounted per address: each case its own). */
const reveal = (harness: RevealHarness, ip: SeededValue, headers: Record<string, string>, from = '127.0.0.1') =>
  harness.app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: [ip.token], purpose: PURPOSE }, remoteAddress: from });

let nextAddress = 1;
const freshAddress = () => `198.51.100.${nextAddress++}`;

/** Subjects that a validly signed token may carry but that cannot be stored as given (PostgreSQL text/jsonb, the audit chain). */
const UNSTORABLE_SUBJECTS: [string, string, string][] = [
  ['a NUL', 'nul\u0000sub', 'nul\\u0000sub'],
  ['a lone surrogate', 'lone\ud800sub', 'lone\\ud800sub'],
  ['a control character', 'tab\tsub\u0085', 'tab\\u0009sub\\u0085'],
  ['an absurd length', 'x'.repeat(5000), 'x'.repeat(40)],
];

describe('a JWT subject or role that cannot be stored as given', () => {
  it.for(UNSTORABLE_SUBJECTS)('refuses a subject with %s at authentication: 401 subject_invalid, audited with a safe rendering', async ([, sub, rendered], { harness, sample: { ip } }) => {
    const before = (await auditRows(harness.testDb)).length;
    const headers = bearer(await harness.token(sub, ['investigator']));
    const response = await reveal(harness, ip, headers, freshAddress());
    expect(response.statusCode).toBe(401);
    expect(response.json()).toEqual({ error: { code: 'subject_invalid', message: expect.stringMatching(/"sub"/) } });
    const rows = await auditRows(harness.testDb);
    expect(rows).toHaveLength(before + 1);
    const row = rows.at(-1);
    expect(row).toMatchObject({ action: 'reveal', actor: null, roles: [], outcome: 'unauthenticated', tokens: [] });
    expect(row?.reason).toContain('subject_invalid');
    expect(row?.reason).toContain(rendered);
    // Nothing in the row was altered on the way in: no replacement characters, nothing over the column limits.
    expect(row?.reason).not.toContain('\uFFFD');
    expect(row?.reason?.length).toBeLessThan(1000);

    const me = await harness.app.inject({ url: '/me', headers, remoteAddress: freshAddress() });
    expect(me.statusCode).toBe(401);
    expect(me.json().error.code).toBe('subject_invalid');
  });

  it('refuses a role that cannot be stored with the same rule', async ({ harness, sample: { ip } }) => {
    const response = await reveal(harness, ip, bearer(await harness.token('rolf', ['investigator', 'bad\u0000role'])), freshAddress());
    expect(response.statusCode).toBe(401);
    expect(response.json()).toEqual({ error: { code: 'subject_invalid', message: expect.stringMatching(/role/) } });
    expect((await auditRows(harness.testDb)).at(-1)?.reason).toContain('bad\\u0000role');
  });

  it.for(UNSTORABLE_SUBJECTS.slice(0, 2))('does not fail other callers: 20 concurrent reveals beside one with %s all succeed', async ([, sub], { harness, sample: { ip } }) => {
    const bad = bearer(await harness.token(sub, ['investigator']));
    const others = await Promise.all(Array.from({ length: 20 }, async (_, index) => bearer(await harness.token(`neighbour-${index}`, ['investigator']))));
    const [poisoned, ...responses] = await Promise.all([reveal(harness, ip, bad), ...others.map((headers) => reveal(harness, ip, headers))]);
    expect(poisoned?.statusCode).toBe(401);
    expect(responses.map((response) => response.statusCode)).toEqual(Array(20).fill(200));
    const rows = await auditRows(harness.testDb);
    for (let index = 0; index < 20; index += 1) expect(rows.some((row) => row.actor === `neighbour-${index}` && row.outcome === 'allowed')).toBe(true);
    const usage = await harness.testDb.owner.pool.query<{ actor: string }>("SELECT DISTINCT actor FROM reveal_budget_usage WHERE actor LIKE 'neighbour-%'");
    expect(usage.rows).toHaveLength(20);
    expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);
  });
});
