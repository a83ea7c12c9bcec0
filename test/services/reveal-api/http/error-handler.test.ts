import { describe, expect } from 'vitest';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE } from '../../../support/reveal-harness.js';

const it = revealTestFor();

const ERROR_SHAPE = { error: { code: expect.any(String), message: expect.any(String) } };

describe('error responses', () => {
  it('answers 413 for a body above the limit, audited as invalid', async ({ harness, sample: { ip } }) => {
    const investigator = bearer(await harness.token('alice', ['investigator']));
    const response = await harness.app.inject({
      method: 'POST',
      url: '/reveal',
      headers: { ...investigator, 'content-type': 'application/json' },
      payload: JSON.stringify({ tokens: [ip.token], purpose: 'x'.repeat(70 * 1024) }),
    });
    expect(response.statusCode).toBe(413);
    expect(response.json()).toEqual({ error: { code: 'payload_too_large', message: expect.any(String) } });
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ action: 'reveal', outcome: 'invalid', reason: 'payload_too_large' });
  });

  it('answers 415 for a body that is not JSON', async ({ harness }) => {
    const investigator = bearer(await harness.token('alice', ['investigator']));
    const response = await harness.app.inject({ method: 'POST', url: '/reveal', headers: { ...investigator, 'content-type': 'text/plain' }, payload: 'tokens=abc' });
    expect(response.statusCode).toBe(415);
    expect(response.json()).toEqual({ error: { code: 'unsupported_media_type', message: expect.any(String) } });
  });

  it('answers 400 for malformed JSON without quoting the body back', async ({ harness }) => {
    const investigator = bearer(await harness.token('alice', ['investigator']));
    const response = await harness.app.inject({
      method: 'POST',
      url: '/reveal',
      headers: { ...investigator, 'content-type': 'application/json' },
      payload: '{"tokens": ["199.172.111.135"',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ error: { code: 'invalid_json', message: 'the request body is not valid JSON' } });
    expect(harness.logs.join('\n')).not.toContain('199.172.111.135');
  });

  it.for([
    ['malformed JSON', 'application/json', '{"tokens": [', 400, 'invalid_json'],
    ['a body that is not JSON', 'text/plain', 'tokens=abc', 415, 'unsupported_media_type'],
    ['a body above the limit', 'application/json', JSON.stringify({ purpose: 'x'.repeat(70 * 1024) }), 413, 'payload_too_large'],
  ] as const)('keeps the caller identity in the audit row of %s', async ([, contentType, payload, status, reason], { harness }) => {
    // Its own caller: repeated 413/415s of one caller are summarised per window (refusal-sampler.test.ts).
    const headers = bearer(await harness.token(`sender-of-${reason}`, ['investigator']));
    const response = await harness.app.inject({ method: 'POST', url: '/reveal', headers: { ...headers, 'content-type': contentType }, payload });
    expect(response.statusCode).toBe(status);
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ action: 'reveal', actor: `sender-of-${reason}`, roles: ['investigator'], outcome: 'invalid', reason });
  });

  it('keeps the caller identity in the audit row of a body that fails validation', async ({ harness, sample: { ip } }) => {
    const investigator = bearer(await harness.token('alice', ['investigator']));
    const response = await harness.app.inject({ method: 'POST', url: '/reveal', headers: investigator, payload: { tokens: [ip.token] } });
    expect(response.statusCode).toBe(400);
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ actor: 'alice', outcome: 'invalid', reason: 'validation_failed', tokens: [ip.token] });
  });

  it('answers 401 before judging the body when the credentials are missing or wrong', async ({ harness }) => {
    const missing = await harness.app.inject({ method: 'POST', url: '/reveal', headers: { 'content-type': 'application/json' }, payload: '{"tokens": [' });
    expect(missing.statusCode).toBe(401);
    expect(missing.json().error.code).toBe('unauthenticated');
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ actor: null, outcome: 'unauthenticated', reason: expect.stringMatching(/^token_missing sent: body_bytes=12 /) });
    const forged = await harness.app.inject({ method: 'POST', url: '/reveal', headers: { authorization: 'Bearer abc.def.ghi', 'content-type': 'text/plain' }, payload: 'x' });
    expect(forged.statusCode).toBe(401);
    // The body was never read (415): its declared size and type are what is recorded.
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({
      actor: null,
      outcome: 'unauthenticated',
      reason: expect.stringMatching(/^malformed_token sent: content_length=1 content_type="text\/plain"$/),
    });
  });

  it.for([
    ['GET', '/reveal', 'POST'],
    ['DELETE', '/audit', 'GET, HEAD'],
    ['POST', '/audit/verify', 'GET, HEAD'],
    ['PUT', '/readyz?verbose=1', 'GET, HEAD'],
  ] as const)('answers %s %s with 405, an Allow header and code method_not_allowed', async ([method, url, allow], { harness }) => {
    const investigator = bearer(await harness.token('alice', ['investigator']));
    const response = await harness.app.inject({ method: method as 'GET', url, headers: investigator });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe(allow);
    expect(response.json()).toEqual({ error: { code: 'method_not_allowed', message: `${method} is not allowed here; this path answers ${allow}` } });
  });

  it('answers 404 in the same shape for unknown routes', async ({ harness }) => {
    const response = await harness.app.inject({ url: '/nope' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual(ERROR_SHAPE);
  });

  it('answers 500 without internals (no SQL, no stack) when the database refuses, and audits the failure', async ({ harness, sample: { ip } }) => {
    const investigator = bearer(await harness.token('alice', ['investigator']));
    await harness.testDb.owner.pool.query('REVOKE SELECT ON pii_vault FROM reveal_api');
    try {
      const response = await harness.app.inject({ method: 'POST', url: '/reveal', headers: investigator, payload: { tokens: [ip.token], purpose: PURPOSE } });
      expect(response.statusCode).toBe(500);
      expect(response.json()).toEqual({ error: { code: 'internal', message: 'internal error; nothing was revealed' } });
      expect(response.body).not.toMatch(/pii_vault|permission|SELECT|\.ts:/);
      expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ outcome: 'failed', reason: 'internal_error' });
    } finally {
      await harness.testDb.owner.pool.query('GRANT SELECT ON pii_vault TO reveal_api');
    }
  });

  it('answers 429 once an identity exceeds its rate limit, keyed by sub not address, and audits it', async ({ harness, sample: { ip } }) => {
    const app = await harness.buildApp({ RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW: '1m' });
    const send = async (sub: string) =>
      app.inject({ method: 'POST', url: '/reveal', headers: bearer(await harness.token(sub, ['investigator'])), payload: { tokens: [ip.token], purpose: PURPOSE } });
    const statuses = [];
    for (let index = 0; index < 4; index += 1) statuses.push((await send('greedy')).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await send('greedy');
    expect(limited.json()).toEqual({ error: { code: 'rate_limited', message: expect.any(String) } });
    expect(limited.headers['retry-after']).toBeDefined();
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ actor: 'greedy', outcome: 'rate_limited', tokens: [ip.token] });
    // Same address, another identity: its own budget.
    expect((await send('patient')).statusCode).toBe(200);
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.body).toMatch(/tokenvault_rate_limit_hits_total\{action="reveal"\} 2/);
  });
});
