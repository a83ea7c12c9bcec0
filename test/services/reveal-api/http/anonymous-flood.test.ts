import { describe, expect } from 'vitest';
import { verifyHashChain } from '../../../../lib/audit/hash-chain-verifier.js';
import type { RevealApp } from '../../../../services/reveal-api/app.js';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { auditRows, auditText, bearer, PURPOSE, type RevealHarness } from '../../../support/reveal-harness.js';

const it = revealTestFor(
  { seed: Array.from({ length: 100 }, (_, index) => ({ field: 'ip' as const, value: `10.20.${Math.floor(index / 250)}.${index % 250}` })) },
  { timeout: 120_000 },
);

// The file's shared harness and the tokens of its 100 values, bound once for the helpers below.
let harness: RevealHarness;
let tokens: string[];
it.beforeAll(({ harness: shared, seeded }) => {
  harness = shared;
  tokens = seeded.map((value) => value.token);
});

/** The body of the finding: 100 valid tokens, a 500-character purpose, a 128-character ticket. */
const largeBody = () => ({ tokens, purpose: `${PURPOSE} ${'p'.repeat(500 - PURPOSE.length - 1)}`, ticket: 't'.repeat(128) });

const auditLogBytes = async () =>
  Number((await harness.testDb.owner.pool.query<{ bytes: string }>("SELECT pg_total_relation_size('audit_log') AS bytes")).rows[0]?.bytes);

/** What an anonymous flood from one address leaves behind once the app has closed its windows. */
async function flood(app: RevealApp, requests: number, from: string) {
  const statuses = new Map<number, number>();
  for (let index = 0; index < requests; index += 1) {
    const headers = index % 2 === 0 ? {} : { authorization: 'Bearer garbage.garbage.garbage' };
    const response = await app.inject({ method: 'POST', url: '/reveal', headers, payload: largeBody(), remoteAddress: from });
    statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
  }
  return statuses;
}

describe('an anonymous flood (finding 1: no credentials, large bodies, as fast as possible)', () => {
  it('adds a bounded number of small audit rows, whatever the number of requests, and none of what was sent', async () => {
    const app = await harness.buildApp({ RATE_LIMIT_ADDRESS_MAX: '60', RATE_LIMIT_WINDOW: '1m' });
    const rowsBefore = (await auditRows(harness.testDb)).length;
    const bytesBefore = await auditLogBytes();

    const statuses = await flood(app, 400, '192.0.2.10');
    // The address guard lets 60 refusals reach authentication, then refuses before reading the body.
    expect(Object.fromEntries(statuses)).toEqual({ 401: 60, 429: 340 });
    await app.close();

    const rows = (await auditRows(harness.testDb)).slice(rowsBefore);
    // First row and one summary each: 401 without a token, 401 with a garbage token, 429 from the guard.
    expect(rows.map((row) => [row.outcome, row.reason?.split(' ')[0], /repeated=(\d+)/.exec(row.reason ?? '')?.[1] ?? 'first'])).toEqual([
      ['unauthenticated', 'token_missing', 'first'],
      ['unauthenticated', 'malformed_token', 'first'],
      ['rate_limited', 'rate_limited', 'first'],
      ...[
        ['unauthenticated', 'unauthenticated', '29'],
        ['unauthenticated', 'unauthenticated', '29'],
        ['rate_limited', 'rate_limited', '339'],
      ],
    ]);
    for (const row of rows) {
      expect(row).toMatchObject({ actor: null, roles: [], client_address: '192.0.2.10', tokens: [], purpose: null, ticket: null });
      expect(row.reason?.length).toBeLessThan(400);
    }
    // Who tried, from where, how often and a digest of what was sent; the tokens and the purpose are not there.
    expect(rows[0]?.reason).toMatch(/^token_missing sent: body_bytes=\d+ body_sha256=[0-9a-f]{64} fields=tokens\[100\],purpose:500ch,ticket:128ch$/);
    // The flood's rows (other tests reveal some of these tokens, as they may).
    const text = await auditText(harness.testDb, rows[0]!.seq);
    for (const token of tokens.slice(0, 5)) expect(text).not.toContain(token);
    expect(text).not.toContain('p'.repeat(100));

    const grown = (await auditLogBytes()) - bytesBefore;
    expect(grown).toBeLessThan(64 * 1024);
    expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);
  });

  it('refuses a flooding address before authentication: even a valid token from it waits, other addresses do not', async () => {
    const app = await harness.buildApp({ RATE_LIMIT_ADDRESS_MAX: '5', RATE_LIMIT_WINDOW: '1m' });
    await flood(app, 10, '192.0.2.20');
    const valid = bearer(await harness.token('alice', ['investigator']));
    const payload = { tokens: tokens.slice(0, 1), purpose: PURPOSE };
    const blocked = await app.inject({ method: 'POST', url: '/reveal', headers: valid, payload, remoteAddress: '192.0.2.20' });
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json()).toEqual({ error: { code: 'rate_limited', message: expect.stringMatching(/without valid credentials from this address/) } });
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect((await app.inject({ method: 'POST', url: '/reveal', headers: valid, payload, remoteAddress: '192.0.2.21' })).statusCode).toBe(200);
    // Valid callers are not counted against their address (a proxy shared by many users is not throttled).
    for (let index = 0; index < 10; index += 1) {
      expect((await app.inject({ method: 'POST', url: '/reveal', headers: valid, payload, remoteAddress: '192.0.2.22' })).statusCode).toBe(200);
    }
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.body).toMatch(/tokenvault_address_guard_hits_total\{action="reveal"\} 6/);
    await app.close();
  });

  it('accounts 413 and 415 of unauthenticated requests like any other refusal (they fail in Fastify before any hook)', async () => {
    const app = await harness.buildApp({ RATE_LIMIT_ADDRESS_MAX: '4', RATE_LIMIT_WINDOW: '1m', BODY_LIMIT_BYTES: '2048' });
    const rowsBefore = (await auditRows(harness.testDb)).length;
    const statuses: number[] = [];
    for (let index = 0; index < 10; index += 1) {
      const tooLarge = index % 2 === 0;
      const response = await app.inject({
        method: 'POST',
        url: '/reveal',
        headers: { 'content-type': tooLarge ? 'application/json' : 'text/plain' },
        payload: tooLarge ? JSON.stringify(largeBody()) : 'tokens=abc',
        remoteAddress: '192.0.2.30',
      });
      statuses.push(response.statusCode);
    }
    // Without credentials a bad body is a 401 first; four of them and the address is refused before its body is read.
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429, 429, 429, 429, 429]);
    await app.close();
    const rows = (await auditRows(harness.testDb)).slice(rowsBefore);
    // The bodies were never read: their declared size (and a type that is not JSON) is what is recorded.
    expect(rows.map((row) => row.reason?.replace(/ from=\S+ to=\S+/, '').split(' (')[0])).toEqual([
      expect.stringMatching(/^token_missing sent: content_length=\d{4}$/),
      expect.stringMatching(/^rate_limited scope=address sent: content_length=\d{4}$/),
      'unauthenticated repeated=3',
      'rate_limited repeated=5',
    ]);
  });

  it('keys unauthenticated refusals by the client address the proxy reports when TRUST_PROXY trusts it', async () => {
    const app = await harness.buildApp({ RATE_LIMIT_ADDRESS_MAX: '2', RATE_LIMIT_WINDOW: '1m', TRUST_PROXY: '1' });
    const send = (forwardedFor: string) =>
      app.inject({ method: 'POST', url: '/reveal', headers: { 'x-forwarded-for': forwardedFor }, payload: { tokens: tokens.slice(0, 1), purpose: PURPOSE }, remoteAddress: '10.0.0.1' });
    const first = [await send('198.51.100.1'), await send('198.51.100.1'), await send('198.51.100.1')].map((response) => response.statusCode);
    const second = [await send('198.51.100.2'), await send('198.51.100.2')].map((response) => response.statusCode);
    expect(first).toEqual([401, 401, 429]);
    expect(second).toEqual([401, 401]);
    await app.close();
    expect((await auditRows(harness.testDb)).filter((row) => row.client_address === '198.51.100.2')).toHaveLength(2);
  });
});
