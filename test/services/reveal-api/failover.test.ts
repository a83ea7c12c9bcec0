import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyHashChain } from '../../../lib/audit/hash-chain-verifier.js';
import { startOwnPostgres, type OwnPostgres } from '../../support/own-postgres.js';
import { bearer, PURPOSE, startRevealHarness, writePolicyFile, type RevealHarness, type SeededValue } from '../../support/reveal-harness.js';

/**
 * A database failover under load: concurrent reveals and an erase in flight when the reveal
 * API's own PostgreSQL cluster is shut down fast (every session terminated with 57P01); it
 * stays down, then comes back on the same address. The process must not crash, must fail
 * closed (503, nothing revealed unaudited) meanwhile, and recover without a restart.
 */
const WORKERS = 12;
const OUTAGE_MS = 5_000;

let postgres: OwnPostgres;
let harness: RevealHarness;
let seeded: SeededValue[];

beforeAll(async () => {
  postgres = await startOwnPostgres();
  // Budgets and approvals are not what this test is about: a policy without them.
  const policy = await writePolicyFile({
    roles: { investigator: { reveal: { ip: 'plain', device_id: 'plain' } }, 'privacy-officer': { erase: ['ip', 'device_id'] } },
  });
  harness = await startRevealHarness({ POLICY_FILE: policy, LOG_LEVEL: 'warn' }, { testDb: postgres });
  seeded = await harness.seed(
    Array.from({ length: 30 }, (_, index) => ({ field: 'ip' as const, value: `10.77.${Math.floor(index / 250)}.${(index % 250) + 1}` })),
  );
}, 120_000);
afterAll(async () => {
  await harness?.close();
  await postgres?.close();
});

interface Answer {
  requestId: string;
  status: number;
}

describe('reveal-api failover', () => {
  it('rides out a fast shutdown of PostgreSQL under concurrent reveals and an erase: 503 meanwhile, every answered reveal audited once, erase all-or-nothing', async () => {
    const answers: Answer[] = [];
    let sequence = 0;
    let loading = true;
    const jwts = await Promise.all(Array.from({ length: WORKERS }, (_, worker) => harness.token(`investigator-${worker}`, ['investigator'], '1h')));
    const revealAs = async (worker: number): Promise<Answer> => {
      sequence += 1;
      const requestId = `failover-${worker}-${sequence}`;
      const token = seeded[sequence % seeded.length]?.token ?? '';
      const response = await harness.app.inject({
        method: 'POST',
        url: '/reveal',
        headers: { ...bearer(jwts[worker] ?? ''), 'x-request-id': requestId },
        payload: { tokens: [token], purpose: PURPOSE },
      });
      return { requestId, status: response.statusCode };
    };
    const load = Promise.all(
      Array.from({ length: WORKERS }, async (_, worker) => {
        while (loading) {
          answers.push(await revealAs(worker));
          // Outage answers come back at once: pace them so the outage is not a busy loop.
          if (answers.at(-1)?.status !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }),
    );
    const readyz = async () => (await harness.app.inject({ url: '/readyz' })).statusCode;
    const waitFor = async (condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await condition())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };

    try {
      await waitFor(() => answers.filter((answer) => answer.status === 200).length >= 50, 'reveals answered before the outage');
      // The erase is in flight when the server goes down: it commits with its audit row or not at all.
      const erased = seeded.slice(0, 3).map((value) => value.token);
      const officer = await harness.token('officer', ['privacy-officer'], '1h');
      const erase = harness.app.inject({
        method: 'POST',
        url: '/erase',
        headers: { ...bearer(officer), 'x-request-id': 'failover-erase' },
        payload: { tokens: erased, purpose: PURPOSE },
      });
      await postgres.stop();
      const eraseStatus = (await erase).statusCode;
      expect([200, 503]).toContain(eraseStatus);

      expect(await readyz()).toBe(503);
      const answeredBefore = answers.length;
      await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
      const duringOutage = answers.slice(answeredBefore);
      expect(duringOutage.length).toBeGreaterThan(0);
      expect(new Set(duringOutage.map((answer) => answer.status))).toEqual(new Set([503]));
      expect(await readyz()).toBe(503);

      await postgres.start();
      await waitFor(async () => (await readyz()) === 200, '/readyz 200 after the database is back');
      const afterRestart = answers.length;
      await waitFor(() => answers.slice(afterRestart).filter((answer) => answer.status === 200).length >= 20, 'reveals answered after recovery');
    } finally {
      loading = false;
      await load;
    }

    // Only 200 and 503: the outage never became a 500.
    expect(new Set(answers.map((answer) => answer.status))).toEqual(new Set([200, 503]));
    const { rows } = await postgres.owner.pool.query<{ request_id: string; n: number }>(
      "SELECT request_id, count(*)::int AS n FROM audit_log WHERE action = 'reveal' GROUP BY request_id",
    );
    const audited = new Map(rows.map((row) => [row.request_id, row.n]));
    // Every value handed out has its audit row, exactly one; no attempt was audited twice.
    for (const answer of answers.filter((candidate) => candidate.status === 200)) expect(audited.get(answer.requestId), answer.requestId).toBe(1);
    expect([...audited.values()].every((count) => count === 1)).toBe(true);
    expect(await verifyHashChain(postgres.owner.pool)).toMatchObject({ ok: true });

    // The erase: vault rows gone exactly when its audit row was committed.
    const { rows: vault } = await postgres.owner.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pii_vault WHERE token = ANY($1)', [
      seeded.slice(0, 3).map((value) => value.token),
    ]);
    const { rows: eraseAudit } = await postgres.owner.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM audit_log WHERE action = 'erase' AND request_id = 'failover-erase'",
    );
    const eraseCommitted = eraseAudit[0]?.n;
    expect([0, 1]).toContain(eraseCommitted);
    expect(vault[0]?.n).toBe(eraseCommitted === 1 ? 0 : 3);
  }, 300_000);
});
