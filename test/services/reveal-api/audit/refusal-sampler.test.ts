import { describe, expect } from 'vitest';
import type { AuditEntry } from '../../../../lib/audit/entry.js';
import { verifyHashChain } from '../../../../lib/audit/hash-chain-verifier.js';
import { AuditWriter } from '../../../../lib/audit/writer.js';
import { RefusalWindows } from '../../../../services/reveal-api/audit/refusal-windows.js';
import { RefusalSampler } from '../../../../services/reveal-api/audit/refusal-sampler.js';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE, type RevealHarness, type SeededValue } from '../../../support/reveal-harness.js';

const it = revealTestFor({ seed: [{ field: 'ip', value: '198.51.100.7' }] }, { timeout: 120_000 });

// The file's shared harness and its one token, bound once for the helpers below.
let harness: RevealHarness;
let token: string;
it.beforeAll(({ harness: shared, seeded }) => {
  harness = shared;
  token = (seeded[0] as SeededValue).token;
});

const entry = (actor: string): AuditEntry => ({
  action: 'reveal',
  actor,
  roles: ['investigator'],
  clientAddress: '127.0.0.1',
  requestId: `first-${actor}`,
  purpose: PURPOSE,
  ticket: null,
  tokens: ['ip_v1_x'],
  fieldCounts: {},
  outcome: 'rate_limited',
  reason: 'rate_limited',
});

/** A sampler on the test database, with a clock the test moves. */
function sampler(options: { maxOpen?: number; graceMs?: number } = {}) {
  const clock = { now: Date.now() };
  const writer = new AuditWriter(harness.database.pool);
  const store = new RefusalWindows(harness.database.pool, options.graceMs === undefined ? {} : { graceMs: options.graceMs });
  const sample = new RefusalSampler({ windowMs: 1000, store, now: () => clock.now, ...(options.maxOpen === undefined ? {} : { maxOpen: options.maxOpen }) });
  const refuse = (actor: string, bytes = 0) => sample.account([`sub:${actor}`, 'reveal', 'rate_limited'], 'rate_limited', entry(actor), bytes, async () => void (await writer.append(entry(actor))));
  return { clock, sample, refuse, store };
}

const rowsOf = async (actor: string) => (await auditRows(harness.testDb)).filter((row) => row.actor === actor);
const storedCounts = async () =>
  (await harness.testDb.owner.pool.query<{ source: string; refusals: number }>('SELECT source, refusals FROM refusal_windows ORDER BY source')).rows;

describe('RefusalSampler', () => {
  it('writes the first refusal per caller and window at once, and one summary row for the rest when the window closes', async () => {
    const { clock, sample, refuse } = sampler();
    expect(await refuse('a')).toBe('first');
    expect((await rowsOf('a')).map((row) => row.reason)).toEqual(['rate_limited']);
    expect(await refuse('a')).toBe('counted');
    expect(await refuse('a')).toBe('counted');
    expect(await refuse('b')).toBe('first');
    clock.now += 500;
    await sample.flush();
    expect(await rowsOf('a')).toHaveLength(1);
    clock.now += 500;
    await sample.flush();
    const rows = await rowsOf('a');
    expect(rows).toHaveLength(2);
    expect(rows[1]).toMatchObject({ request_id: 'first-a', outcome: 'rate_limited', tokens: [], purpose: null, reason: expect.stringMatching(/^rate_limited repeated=2 from=\S+ to=\S+ \(summary/) });
    // b was refused once: its own row says everything, no summary.
    expect(await rowsOf('b')).toHaveLength(1);
    // A new window: audited in full again.
    expect(await refuse('a')).toBe('first');
    await sample.close();
    expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);
  });

  it('stores the counts of open windows on every flush, so a crash loses at most what came after the last one', async () => {
    const { clock, sample, refuse } = sampler();
    await refuse('stored');
    for (let index = 0; index < 5; index += 1) await refuse('stored');
    await sample.flush();
    expect(await storedCounts()).toEqual([{ source: JSON.stringify(['sub:stored', 'reveal', 'rate_limited']), refusals: 5 }]);
    for (let index = 0; index < 3; index += 1) await refuse('stored');
    await sample.flush();
    expect(await storedCounts()).toEqual([{ source: JSON.stringify(['sub:stored', 'reveal', 'rate_limited']), refusals: 8 }]);
    clock.now += 1000;
    await sample.flush();
    // The summary row and the removal of the stored count commit together.
    expect(await storedCounts()).toEqual([]);
    expect((await rowsOf('stored')).map((row) => row.reason?.split(' ').slice(0, 2).join(' '))).toEqual(['rate_limited', 'rate_limited repeated=8']);
  });

  it('summarises the stored counts of a replica that stopped, exactly once, even when two replicas recover at once', async () => {
    const crashed = sampler();
    await crashed.refuse('crashed');
    for (let index = 0; index < 7; index += 1) await crashed.refuse('crashed');
    await crashed.sample.flush();
    // The process dies here: no close(), its memory is gone. Two others find the row once it is stale.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const [one, two] = [new RefusalWindows(harness.database.pool, { graceMs: 10 }), new RefusalWindows(harness.database.pool, { graceMs: 10 })];
    const recovered = await Promise.all([one.recover(), two.recover()]);
    expect(recovered.map((result) => result.refusals).sort()).toEqual([0, 7]);
    const rows = await rowsOf('crashed');
    expect(rows.map((row) => row.reason?.split(' (')[0]?.replace(/from=\S+ to=\S+ /, ''))).toEqual(['rate_limited', 'rate_limited repeated=7 recovered']);
    expect(rows[1]?.request_id).toBe('first-crashed');
    expect(await storedCounts()).toEqual([]);
  });

  it('writes only the remainder when another replica took its row as abandoned meanwhile (no refusal counted twice)', async () => {
    const slow = sampler();
    await slow.refuse('slow');
    for (let index = 0; index < 4; index += 1) await slow.refuse('slow');
    await slow.sample.flush();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await new RefusalWindows(harness.database.pool, { graceMs: 10 }).recover()).refusals).toBe(4);
    for (let index = 0; index < 2; index += 1) await slow.refuse('slow');
    await slow.sample.flush();
    slow.clock.now += 1000;
    await slow.sample.flush();
    const counts = (await rowsOf('slow')).slice(1).map((row) => Number(/repeated=(\d+)/.exec(row.reason ?? '')?.[1]));
    expect(counts).toEqual([4, 2]);
    expect(await storedCounts()).toEqual([]);
  });

  it('bounds memory and rows when too many sources refuse at once: new sources share one window per action and code', async () => {
    const { sample, refuse } = sampler({ maxOpen: 2 });
    expect(await refuse('m1')).toBe('first');
    expect(await refuse('m2')).toBe('first');
    expect(await refuse('m3')).toBe('first');
    expect(await refuse('m4')).toBe('counted');
    expect(await refuse('m5')).toBe('counted');
    await sample.close();
    const rows = (await auditRows(harness.testDb)).filter((row) => row.request_id === 'first-m3');
    expect(rows.map((row) => [row.actor, row.client_address])).toEqual([
      ['m3', '127.0.0.1'],
      [null, null],
    ]);
    expect(rows[1]?.reason).toMatch(/^rate_limited repeated=2 .*more sources than tracked/);
  });

  it('fails the refusal closed when its first row cannot be written, and starts the window again with the next one', async () => {
    const { sample } = sampler();
    const key = ['sub:nobody', 'reveal', 'rate_limited'];
    await expect(sample.account(key, 'rate_limited', entry('nobody'), 0, () => Promise.reject(new Error('audit down')))).rejects.toThrow('audit down');
    let written = false;
    expect(await sample.account(key, 'rate_limited', entry('nobody'), 0, async () => void (written = true))).toBe('first');
    expect(written).toBe(true);
  });
});

describe('rate-limited requests in the audit log', () => {
  it('writes one row for the first refusal and one summary row with the count, not a row per request', async () => {
    const app = await harness.buildApp({ RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW: '1m' });
    const headers = bearer(await harness.token('flood', ['investigator']));
    const statuses: number[] = [];
    for (let index = 0; index < 40; index += 1) {
      statuses.push((await app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: [token], purpose: PURPOSE } })).statusCode);
    }
    expect(statuses.filter((status) => status === 429)).toHaveLength(38);
    expect((await rowsOf('flood')).map((row) => row.outcome)).toEqual(['allowed', 'allowed', 'rate_limited']);
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.body).toMatch(/tokenvault_audit_refusals_summarised_total\{code="rate_limited"\} 37/);
    expect(metrics.body).toMatch(/tokenvault_reveal_requests_total\{action="reveal",outcome="rate_limited"\} 38/);

    await app.close();
    const rows = await rowsOf('flood');
    expect(rows.map((row) => row.outcome)).toEqual(['allowed', 'allowed', 'rate_limited', 'rate_limited']);
    expect(rows[3]?.reason).toMatch(/^rate_limited repeated=37 from=\S+ to=\S+/);
    expect(rows[3]?.request_id).toBe(rows[2]?.request_id);
    expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);
  });
});
