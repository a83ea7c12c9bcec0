import { beforeEach, describe, expect } from 'vitest';
import { verifyHashChain } from '../../../../lib/audit/hash-chain-verifier.js';
import type { RevealApp } from '../../../../services/reveal-api/app.js';
import { freshRevealTestFor } from '../../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE, type RevealHarness, type SeededValue } from '../../../support/reveal-harness.js';

/**
 * Finding 4 of issue 16: the database owner resets spent budgets. Budget usage is reconciled
 * against the chain's field_counts; a window whose stored usage is below the chain's count is
 * reported (error log, tokenvault_budget_mismatch_total, /audit/verify, a budget.reconcile
 * audit row) and raised to the chain's count, so enforcement uses the larger of the two.
 */
const POLICY = {
  roles: {
    support: { reveal: { ip: 'masked', device_id: 'masked' }, budget: { per_hour: 100, per_day: 500 } },
    investigator: { reveal: { ip: 'plain', device_id: 'plain' }, budget: { per_hour: 1000 }, approval: { fields: ['device_id'] } },
    unlimited: { reveal: { ip: 'masked' } },
    approver: { approve: true },
    auditor: { audit: true },
  },
  approval: { ttl_seconds: 600, approvers_required: 1 },
};

let harness: RevealHarness;
let app: RevealApp;
let ips: SeededValue[];
let devices: SeededValue[];

/**
 * Reconciliation compares the current window and leaves the first and last seconds of a window
 * alone (clocks may disagree on which window a reveal belongs to): a test that would straddle
 * the end of a UTC hour starts in the next one instead.
 */
async function awayFromAnHourBoundary(): Promise<void> {
  const hour = 3_600_000;
  const untilNext = hour - (Date.now() % hour);
  if (untilNext < 60_000) await new Promise((resolve) => setTimeout(resolve, untilNext + 3_000));
}

// Registered first, so it runs before the harness starts.
beforeEach(awayFromAnHourBoundary, 120_000);

// Each test spends and resets budgets of its own, on a fresh database.
const it = freshRevealTestFor(
  {
    policy: POLICY,
    env: { BUDGET_RECONCILE_INTERVAL_SECONDS: '0' },
    seed: [
      ...Array.from({ length: 130 }, (_, index) => ({ field: 'ip' as const, value: `10.20.${Math.floor(index / 250)}.${(index % 250) + 1}` })),
      { field: 'device_id', value: '610-20-3001' },
      { field: 'device_id', value: '610-20-3002' },
    ],
  },
  { timeout: 120_000 },
);

// The test's own harness: 130 ip values, then two device ids.
it.beforeEach(({ harness: fresh, seeded }) => {
  harness = fresh;
  app = harness.app;
  ips = seeded.slice(0, 130);
  devices = seeded.slice(130);
});

const reveal = async (target: RevealApp, sub: string, roles: string[], tokens: string[]) =>
  target.inject({ method: 'POST', url: '/reveal', headers: bearer(await harness.token(sub, roles)), payload: { tokens, purpose: PURPOSE } });
const verify = async (target: RevealApp) => target.inject({ url: '/audit/verify', headers: bearer(await harness.token('carol', ['auditor'])) });
const ipTokens = (from: number, count: number) => ips.slice(from, from + count).map((value) => value.token);

async function mismatchCount(target: RevealApp, budget: string): Promise<number> {
  const match = new RegExp(`^tokenvault_budget_mismatch_total\\{budget="${budget}"\\} (\\d+)`, 'm').exec((await target.inject({ url: '/metrics' })).body);
  return match === null ? 0 : Number(match[1]);
}

/** Support user sue spends her whole hour (100 values) on the first replica. */
async function spendTheHour(): Promise<void> {
  const spent = await reveal(app, 'sue', ['support'], ipTokens(0, 100));
  expect(spent.statusCode).toBe(200);
  expect(spent.headers['x-budget-remaining-hour']).toBe('0');
}

describe('budget usage reset by the database owner', () => {
  it('is found by reconciliation (DELETE): reported in /audit/verify, metrics, the log and the chain, and the next reveal is refused', async () => {
    await spendTheHour();
    await harness.testDb.owner.pool.query('DELETE FROM reveal_budget_usage');

    const verdict = await verify(app);
    expect(verdict.statusCode).toBe(200);
    expect(verdict.json().budgets).toMatchObject({
      ok: false,
      mismatches: expect.arrayContaining([
        expect.objectContaining({ actor: 'sue', budget: 'hour', stored: 0, chain: 100 }),
        expect.objectContaining({ actor: 'sue', budget: 'day', stored: 0, chain: 100 }),
      ]),
    });
    expect(verdict.json().budgets.message).toMatch(/below what the audit chain shows/);

    // A replica that never saw sue's usage (a fresh process) reads the reconciled table.
    const other = await harness.buildApp();
    const refused = await reveal(other, 'sue', ['support'], ipTokens(100, 1));
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error.code).toBe('budget_exhausted');

    expect(await mismatchCount(app, 'hour')).toBe(1);
    expect(await mismatchCount(app, 'day')).toBe(1);
    const errors = harness.logs.map((line) => JSON.parse(line) as { level: number; msg: string; actor?: string; budget?: string }).filter((line) => line.level >= 50);
    expect(errors).toContainEqual(expect.objectContaining({ msg: expect.stringContaining('budget_mismatch'), actor: 'sue', budget: 'hour' }));
    const recorded = (await auditRows(harness.testDb)).filter((row) => row.action === 'budget.reconcile');
    expect(recorded.map((row) => [row.actor, row.outcome, row.reason])).toEqual(
      expect.arrayContaining([['system:budget', 'mismatch', expect.stringMatching(/^budget_mismatch budget=hour window_start=\S+ stored=0 chain=100 actor=sue$/)]]),
    );
    expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);

    // Reported once: the table now matches the chain; the chain keeps the record.
    const again = (await verify(app)).json().budgets;
    expect(again.mismatches).toEqual([]);
    expect(again.recorded).toMatchObject({ count: 2 });
    expect(again.ok).toBe(false);
  });

  it('bounds what a reset (SET used = 0) wins to one budget before the elected replica\'s next round, then refuses', async () => {
    await spendTheHour();
    await harness.testDb.owner.pool.query('UPDATE reveal_budget_usage SET used = 0');
    // Before any round: the reset is worth at most one more hour's budget (20 of 100 used here).
    const other = await harness.buildApp({ BUDGET_RECONCILE_INTERVAL_SECONDS: '1' });
    expect((await reveal(other, 'sue', ['support'], ipTokens(100, 20))).statusCode).toBe(200);

    // The periodic round on the elected replica raises the stored usage to the chain's 120.
    await expect.poll(() => mismatchCount(other, 'hour'), { timeout: 20_000, interval: 200 }).toBe(1);
    const refused = await reveal(other, 'sue', ['support'], ipTokens(120, 1));
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error.message).toMatch(/0 of 100 left/);
    const { rows } = await harness.testDb.owner.pool.query<{ budget: string; used: number }>("SELECT budget, used FROM reveal_budget_usage WHERE actor = 'sue' ORDER BY budget");
    expect(rows).toEqual([
      { budget: 'day', used: 120 },
      { budget: 'hour', used: 120 },
    ]);
    const recorded = (await verify(app)).json().budgets.recorded;
    expect(recorded.count).toBe(2);
    expect(recorded.latest[0].reason).toMatch(/stored=20 chain=120 actor=sue/);
  });

  it('reports nothing when the table and the chain agree: reveals and a collection on two replicas, refusals, a role without budgets', async () => {
    const other = await harness.buildApp();
    expect((await reveal(app, 'sue', ['support'], ipTokens(0, 60))).statusCode).toBe(200);
    expect((await reveal(other, 'sue', ['support'], ipTokens(60, 40))).statusCode).toBe(200);
    expect((await reveal(other, 'sue', ['support'], ipTokens(100, 5))).statusCode).toBe(429);
    expect((await reveal(app, 'una', ['unlimited'], ipTokens(0, 30))).statusCode).toBe(200);
    // A four-eyes collection draws on the investigator's hour budget like a reveal.
    const created = await reveal(app, 'ivan', ['investigator'], [devices[0]!.token, devices[1]!.token]);
    expect(created.statusCode).toBe(202);
    const id = created.json<{ request_id: string }>().request_id;
    expect(
      (await other.inject({ method: 'POST', url: `/approvals/${id}`, headers: bearer(await harness.token('olga', ['approver'])), payload: { decision: 'approve', reason: 'case file ok' } }))
        .statusCode,
    ).toBe(200);
    expect((await other.inject({ url: `/reveal-requests/${id}`, headers: bearer(await harness.token('ivan', ['investigator'])) })).statusCode).toBe(200);
    expect((await reveal(app, 'ivan', ['investigator'], ipTokens(0, 3))).statusCode).toBe(200);

    const budgets = (await verify(other)).json().budgets;
    expect(budgets).toMatchObject({ ok: true, mismatches: [], recorded: { count: 0 } });
    expect(budgets.checked).toBeGreaterThanOrEqual(3);
    expect(await mismatchCount(other, 'hour')).toBe(0);
    expect((await auditRows(harness.testDb)).filter((row) => row.action === 'budget.reconcile')).toEqual([]);
  });
});
