import { describe, expect } from 'vitest';
import { verifyHashChain } from '../../../lib/audit/hash-chain-verifier.js';
import type { RevealApp } from '../../../services/reveal-api/app.js';
import { freshRevealTestFor } from '../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE, type RevealHarness, type SeededValue } from '../../support/reveal-harness.js';

const POLICY = {
  roles: {
    investigator: { reveal: { ip: 'plain', device_id: 'plain' }, budget: { per_hour: 3, per_day: 100 } },
    responder: { reveal: { ip: 'plain', device_id: 'plain' }, budget: { per_day: 1000 }, break_glass: { per_day: 2 } },
    unlimited: { reveal: { ip: 'masked' } },
  },
};

// Budgets are spent by the tests: each starts with fresh ones on a fresh database.
const it = freshRevealTestFor(
  {
    policy: POLICY,
    seed: [
      { field: 'ip', value: '10.0.0.1' },
      { field: 'ip', value: '10.0.0.2' },
      { field: 'ip', value: '10.0.0.3' },
      { field: 'device_id', value: '111-22-3333' },
      { field: 'device_id', value: '444-55-6666' },
    ],
  },
  { timeout: 120_000 },
);

// The test's own harness with two replicas of the app on its database, bound for the helpers below.
let harness: RevealHarness;
let first: RevealApp;
let second: RevealApp;
let values: SeededValue[];
it.beforeEach(async ({ harness: fresh, seeded }) => {
  harness = fresh;
  first = harness.app;
  second = await harness.buildApp();
  values = seeded;
});

const reveal = async (app: RevealApp, sub: string, roles: string[], tokens: string[], extra: Record<string, unknown> = {}) =>
  app.inject({ method: 'POST', url: '/reveal', headers: bearer(await harness.token(sub, roles)), payload: { tokens, purpose: PURPOSE, ...extra } });

const tokenOf = (index: number) => (values[index] as SeededValue).token;

describe('reveal budgets shared by every replica', () => {
  it('counts one budget for two app instances on one database and refuses what would exceed it', async () => {
    const one = await reveal(first, 'alice', ['investigator'], [tokenOf(0), tokenOf(1)]);
    expect(one.statusCode).toBe(200);
    expect(one.headers).toMatchObject({ 'x-budget-limit-hour': '3', 'x-budget-remaining-hour': '1', 'x-budget-remaining-day': '98' });
    expect(Number(one.headers['x-budget-reset-hour'])).toBeGreaterThan(0);

    // The other instance sees the same count: two more values do not fit, nothing is revealed.
    const refused = await reveal(second, 'alice', ['investigator'], [tokenOf(2), tokenOf(3)]);
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({ error: { code: 'budget_exhausted', message: expect.stringMatching(/budget per hour: 1 of 3 left/) } });
    expect(refused.body).not.toContain('10.0.0.3');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.headers['x-budget-remaining-hour']).toBe('1');

    // What still fits is revealed, then the budget is spent for both instances.
    expect((await reveal(second, 'alice', ['investigator'], [tokenOf(2)])).statusCode).toBe(200);
    const spent = await reveal(first, 'alice', ['investigator'], [tokenOf(3)]);
    expect(spent.statusCode).toBe(429);
    expect(spent.headers['x-budget-remaining-hour']).toBe('0');
    // Another actor has a budget of their own.
    expect((await reveal(first, 'bob', ['investigator'], [tokenOf(3)])).statusCode).toBe(200);

    const rows = (await auditRows(harness.testDb)).filter((row) => row.actor === 'alice');
    expect(rows.map((row) => [row.outcome, row.reason?.split(' ')[0]])).toEqual([
      ['allowed', 'revealed=2'],
      ['rate_limited', 'budget_exhausted'],
      ['allowed', 'revealed=1'],
      ['rate_limited', 'budget_exhausted'],
    ]);
    expect(rows[1]?.field_counts).toEqual({});
    const metrics = await second.inject({ url: '/metrics' });
    expect(metrics.body).toMatch(/tokenvault_budget_exhausted_total\{budget="hour"\} 1/);
    expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);
  });

  it('never lets concurrent reveals on two instances spend more than the budget', async () => {
    const attempts = await Promise.all(
      Array.from({ length: 12 }, (_, index) => reveal(index % 2 === 0 ? first : second, 'carol', ['investigator'], [tokenOf(index % 5)])),
    );
    const statuses = attempts.map((response) => response.statusCode);
    expect(statuses.filter((status) => status === 200)).toHaveLength(3);
    expect(statuses.filter((status) => status === 429)).toHaveLength(9);
    const { rows } = await harness.testDb.owner.pool.query<{ budget: string; used: number }>(
      "SELECT budget, used FROM reveal_budget_usage WHERE actor = 'carol' ORDER BY budget",
    );
    expect(rows).toEqual([
      { budget: 'day', used: 3 },
      { budget: 'hour', used: 3 },
    ]);
    expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);
  });

  it('reveals with break_glass on its own small budget, flagged in the audit log and counted in a metric', async () => {
    const glass = await reveal(first, 'dana', ['responder'], [tokenOf(0)], { break_glass: true });
    expect(glass.statusCode).toBe(200);
    expect(glass.headers['x-budget-remaining-break-glass']).toBe('1');
    const over = await reveal(second, 'dana', ['responder'], [tokenOf(1), tokenOf(2)], { break_glass: true });
    expect(over.statusCode).toBe(429);
    expect(over.json().error.message).toMatch(/break-glass budget/);
    // Without break_glass the ordinary budget applies.
    expect((await reveal(second, 'dana', ['responder'], [tokenOf(1), tokenOf(2)])).statusCode).toBe(200);
    const notAllowed = await reveal(first, 'alice', ['investigator'], [tokenOf(0)], { break_glass: true });
    expect(notAllowed.statusCode).toBe(403);

    const rows = await auditRows(harness.testDb);
    expect(rows.filter((row) => row.actor === 'dana').map((row) => [row.action, row.outcome])).toEqual([
      ['reveal.break_glass', 'allowed'],
      ['reveal.break_glass', 'rate_limited'],
      ['reveal', 'allowed'],
    ]);
    expect(rows.at(-1)).toMatchObject({ action: 'reveal.break_glass', actor: 'alice', outcome: 'denied', reason: 'break_glass_not_allowed' });
    expect((await first.inject({ url: '/metrics' })).body).toMatch(/tokenvault_break_glass_reveals_total 1/);
  });

  it('sends no budget headers to a role without budgets', async () => {
    const response = await reveal(first, 'erin', ['unlimited'], [tokenOf(0)]);
    expect(response.statusCode).toBe(200);
    expect(Object.keys(response.headers).filter((name) => name.startsWith('x-budget'))).toEqual([]);
  });

  it('refuses a caller hammering an exhausted budget without a row per request', async () => {
    expect((await reveal(first, 'alice', ['investigator'], [tokenOf(0), tokenOf(1), tokenOf(2)])).statusCode).toBe(200);
    const before = (await auditRows(harness.testDb)).length;
    const statuses: number[] = [];
    for (let index = 0; index < 20; index += 1) statuses.push((await reveal(first, 'alice', ['investigator'], [tokenOf(4)])).statusCode);
    expect(new Set(statuses)).toEqual(new Set([429]));
    // At most the refusal decided in the chain transaction and the first sampled one.
    expect((await auditRows(harness.testDb)).length - before).toBeLessThanOrEqual(2);
  });
});
