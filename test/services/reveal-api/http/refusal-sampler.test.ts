import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../../../lib/audit/entry.js';
import { verifyAuditChain } from '../../../../lib/audit/reader.js';
import { RefusalSampler } from '../../../../services/reveal-api/http/refusal-sampler.js';
import { auditRows, bearer, PURPOSE, startRevealHarness, type RevealHarness, type SeededValue } from '../support.js';

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

describe('RefusalSampler', () => {
  it('audits the first refusal per caller and window, and summarises the rest in one row when the window closes', async () => {
    let now = 0;
    const written: AuditEntry[] = [];
    const sampler = new RefusalSampler({ windowMs: 1000, now: () => now, write: async (row) => written.push(row) });
    expect(sampler.admit('a', entry('a'))).toBe(true);
    expect(sampler.admit('a', entry('a'))).toBe(false);
    expect(sampler.admit('a', entry('a'))).toBe(false);
    expect(sampler.admit('b', entry('b'))).toBe(true);
    now = 500;
    await sampler.flushClosed();
    expect(written).toEqual([]);
    now = 1000;
    await sampler.flushClosed();
    expect(written).toEqual([
      expect.objectContaining({ actor: 'a', requestId: 'first-a', outcome: 'rate_limited', tokens: [], purpose: null, reason: expect.stringMatching(/^rate_limited repeated=2 from=/) }),
    ]);
    // A new window: audited in full again.
    expect(sampler.admit('a', entry('a'))).toBe(true);
  });

  it('writes the summary of a closed window when the same caller is refused again, and everything at shutdown', async () => {
    let now = 0;
    const written: AuditEntry[] = [];
    const sampler = new RefusalSampler({ windowMs: 1000, now: () => now, write: async (row) => written.push(row) });
    sampler.admit('a', entry('a'));
    sampler.admit('a', entry('a'));
    now = 1500;
    expect(sampler.admit('a', entry('a'))).toBe(true);
    expect(written.map((row) => row.reason?.split(' ').slice(0, 2).join(' '))).toEqual(['rate_limited repeated=1']);
    sampler.admit('a', entry('a'));
    sampler.admit('a', entry('a'));
    await sampler.flushAll();
    expect(written.map((row) => row.reason?.split(' ').slice(0, 2).join(' '))).toEqual(['rate_limited repeated=1', 'rate_limited repeated=2']);
  });

  it('audits every refusal in full once too many callers have open windows (bounded memory, never fewer rows)', () => {
    const sampler = new RefusalSampler({ windowMs: 1000, maxOpen: 2, write: async () => undefined });
    expect(sampler.admit('a', entry('a'))).toBe(true);
    expect(sampler.admit('b', entry('b'))).toBe(true);
    expect(sampler.admit('c', entry('c'))).toBe(true);
    expect(sampler.admit('c', entry('c'))).toBe(true);
  });
});

describe('rate-limited requests in the audit log', () => {
  let harness: RevealHarness;
  let token: string;

  beforeAll(async () => {
    harness = await startRevealHarness();
    token = ((await harness.seed([{ field: 'ip', value: '198.51.100.7' }]))[0] as SeededValue).token;
  }, 120_000);
  afterAll(async () => {
    await harness?.close();
  });

  it('writes one row for the first refusal and one summary row with the count, not a row per request', async () => {
    const app = await harness.buildApp({ RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW: '1m' });
    const headers = bearer(await harness.token('flood', ['investigator']));
    const statuses: number[] = [];
    for (let index = 0; index < 40; index += 1) {
      statuses.push((await app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: [token], purpose: PURPOSE } })).statusCode);
    }
    expect(statuses.filter((status) => status === 429)).toHaveLength(38);
    expect((await auditRows(harness.testDb)).filter((row) => row.actor === 'flood').map((row) => row.outcome)).toEqual(['allowed', 'allowed', 'rate_limited']);
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.body).toMatch(/tokenvault_audit_refusals_summarised_total\{code="rate_limited"\} 37/);
    expect(metrics.body).toMatch(/tokenvault_reveal_requests_total\{action="reveal",outcome="rate_limited"\} 38/);

    await app.close();
    const rows = (await auditRows(harness.testDb)).filter((row) => row.actor === 'flood');
    expect(rows.map((row) => row.outcome)).toEqual(['allowed', 'allowed', 'rate_limited', 'rate_limited']);
    expect(rows[3]?.reason).toMatch(/^rate_limited repeated=37 from=\S+ to=\S+/);
    expect(rows[3]?.request_id).toBe(rows[2]?.request_id);
    expect((await verifyAuditChain(harness.testDb.owner.pool)).ok).toBe(true);
  });
});
