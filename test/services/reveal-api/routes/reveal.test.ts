import { SignJWT } from 'jose';
import { describe, expect } from 'vitest';
import { LOCAL_AUDIENCE, LOCAL_ISSUER } from '../../../../lib/auth/local-signing-key.js';
import { NOT_A_TOKEN_HINT } from '../../../../services/reveal-api/routes/schemas.js';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { auditRows, auditText, bearer, PURPOSE, type RevealHarness } from '../../../support/reveal-harness.js';

const it = revealTestFor();

async function reveal(harness: RevealHarness, roles: string[], tokens: string[], extra: Record<string, unknown> = {}) {
  const token = await harness.token('alice', roles);
  return harness.app.inject({ method: 'POST', url: '/reveal', headers: bearer(token), payload: { tokens, purpose: PURPOSE, ...extra } });
}

describe('POST /reveal', () => {
  it('reveals plain values to an investigator and audits the attempt before answering', async ({ harness, sample: { ip, device } }) => {
    const response = await reveal(harness, ['investigator'], [ip.token, device.token], { ticket: 'CASE-4711' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      results: [
        { token: ip.token, field: 'ip', value: '199.172.111.135', redaction: 'none' },
        { token: device.token, field: 'device_id', value: '593-47-5928', redaction: 'none' },
      ],
      audit_seq: expect.any(Number),
    });
    const rows = await auditRows(harness.testDb);
    const last = rows.at(-1);
    // The response names its audit entry, in the body and a header: the receipt to fetch later.
    expect(response.json<{ audit_seq: number }>().audit_seq).toBe(last?.seq);
    expect(response.headers['x-audit-seq']).toBe(String(last?.seq));
    expect(last).toMatchObject({
      action: 'reveal',
      actor: 'alice',
      roles: ['investigator'],
      outcome: 'allowed',
      tokens: [ip.token, device.token],
      purpose: PURPOSE,
      ticket: 'CASE-4711',
      field_counts: { ip: 1, device_id: 1 },
      request_id: response.headers['x-request-id'],
    });
  });

  it('masks values for support: last four alphanumerics of a device id, first two octets or groups of an IP', async ({ harness, sample: { ip, device, ipv6 } }) => {
    const response = await reveal(harness, ['support'], [ip.token, device.token, ipv6.token]);
    expect(response.json().results).toEqual([
      { token: ip.token, field: 'ip', value: '199.172.*.*', redaction: 'masked' },
      { token: device.token, field: 'device_id', value: '***-**-5928', redaction: 'masked' },
      { token: ipv6.token, field: 'ip', value: '2001:db8:*:*:*:*:*:*', redaction: 'masked' },
    ]);
  });

  it('gives a caller with several roles the most permissive grant per field', async ({ harness, sample: { device } }) => {
    const response = await reveal(harness, ['support', 'investigator'], [device.token]);
    expect(response.json().results[0]).toMatchObject({ value: '593-47-5928', redaction: 'none' });
  });

  it('answers duplicate tokens once each and reports unknown and malformed tokens per token', async ({ harness, sample: { ip } }) => {
    const unknown = ip.token.replace(/.{4}$/, 'AAAA');
    const response = await reveal(harness, ['investigator'], [ip.token, ip.token, unknown, 'not-a-token', ip.token]);
    expect(response.statusCode).toBe(200);
    expect(response.json().results).toEqual([
      { token: ip.token, field: 'ip', value: '199.172.111.135', redaction: 'none' },
      { token: unknown, error: 'not_found' },
      { token: 'not-a-token', error: 'not_a_token', hint: NOT_A_TOKEN_HINT },
    ]);
    const last = (await auditRows(harness.testDb)).at(-1);
    expect(last?.tokens).toEqual([ip.token, unknown]);
    expect(last?.reason).toBe('revealed=1 not_found=1 not_a_token=1');
  });

  it('gives an expired bearer token only the documented few seconds of clock leeway (JWT_CLOCK_TOLERANCE_SECONDS, default 5)', async ({ harness, sample: { ip } }) => {
    const expiredAgo = async (seconds: number) => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = await new SignJWT({ roles: ['investigator'] })
        .setProtectedHeader({ alg: 'ES256', kid: harness.signingKey.kid, typ: 'JWT' })
        .setSubject('alice')
        .setIssuer(LOCAL_ISSUER)
        .setAudience(LOCAL_AUDIENCE)
        .setIssuedAt(now - seconds - 1)
        .setExpirationTime(now - seconds)
        .sign(harness.signingKey.privateKey);
      return harness.app.inject({ method: 'POST', url: '/reveal', headers: bearer(jwt), payload: { tokens: [ip.token], purpose: PURPOSE } });
    };
    // A token minted with --ttl 1s and used 12 s later reveals nothing (the old default of 30 s let it through).
    const late = await expiredAgo(11);
    expect(late.statusCode).toBe(401);
    expect(late.json().error.code).toBe('unauthenticated');
    expect(late.body).not.toContain(ip.value);
    // Within the leeway (clock skew between the identity provider and this host) it still works.
    expect((await expiredAgo(1)).statusCode).toBe(200);
  });

  it('refuses with 403 and audits a caller whose roles grant no reveal', async ({ harness, sample: { ip } }) => {
    const response = await reveal(harness, ['analyst'], [ip.token]);
    expect(response.statusCode).toBe(403);
    expect(response.json()).toEqual({ error: { code: 'forbidden', message: expect.any(String) } });
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ action: 'reveal', outcome: 'denied', actor: 'alice', tokens: [ip.token] });
  });

  it('requires a purpose of at least 10 characters and audits the invalid attempt', async ({ harness, sample: { ip } }) => {
    const token = await harness.token('alice', ['investigator']);
    const response = await harness.app.inject({ method: 'POST', url: '/reveal', headers: bearer(token), payload: { tokens: [ip.token], purpose: '   short   ' } });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe('invalid_request');
    expect(response.json().error.message).toMatch(/purpose/);
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ outcome: 'invalid', reason: 'validation_failed', tokens: [ip.token] });
  });

  it('audits a request whose tokens are all malformed as invalid, never as allowed', async ({ harness }) => {
    const response = await reveal(harness, ['investigator'], ['ip_v1_not-a-token', 'plainly wrong']);
    expect(response.statusCode).toBe(200);
    expect(response.json().results).toEqual([
      { token: 'ip_v1_not-a-token', error: 'not_a_token', hint: NOT_A_TOKEN_HINT },
      { token: 'plainly wrong', error: 'not_a_token', hint: NOT_A_TOKEN_HINT },
    ]);
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ action: 'reveal', actor: 'alice', outcome: 'invalid', reason: 'not_a_token=2', tokens: [] });
  });

  it('audits valid and malformed tokens together as partial', async ({ harness, sample: { ip } }) => {
    const response = await reveal(harness, ['investigator'], [ip.token, 'ip_v1_not-a-token']);
    expect(response.json().results).toEqual([
      { token: ip.token, field: 'ip', value: ip.value, redaction: 'none' },
      { token: 'ip_v1_not-a-token', error: 'not_a_token', hint: NOT_A_TOKEN_HINT },
    ]);
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ outcome: 'partial', reason: 'revealed=1 not_a_token=1', tokens: [ip.token] });
  });

  it('rejects more than 100 tokens', async ({ harness, sample: { ip } }) => {
    const response = await reveal(harness, ['investigator'], Array.from({ length: 101 }, (_, index) => `${ip.token.slice(0, -3)}${String(index).padStart(3, '0')}`));
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ error: { code: 'invalid_request', message: 'tokens: at most 100 per request' } });
  });

  it('says in words what a body lacks, not in zod wording', async ({ harness, sample: { ip } }) => {
    const token = await harness.token('alice', ['investigator']);
    const missing = await harness.app.inject({ method: 'POST', url: '/reveal', headers: bearer(token), payload: { tokens: [ip.token] } });
    expect(missing.json()).toEqual({ error: { code: 'invalid_request', message: 'purpose is required (at least 10 characters)' } });
    const wrong = await harness.app.inject({ method: 'POST', url: '/reveal', headers: bearer(token), payload: { tokens: ip.token, purpose: PURPOSE, ticket: 7 } });
    expect(wrong.json()).toEqual({ error: { code: 'invalid_request', message: 'tokens: must be an array, not a string; ticket: must be a string, not a number' } });
    expect(JSON.stringify([missing.json(), wrong.json()])).not.toMatch(/Invalid input|expected .*, received|Too big/);
  });

  it('never writes a revealed value into the audit log or the logs', async ({ harness, sample }) => {
    // Reveals every sample value itself (plain and masked), so the check does not depend on the tests that ran before it.
    const tokens = Object.values(sample).map((value) => value.token);
    expect((await reveal(harness, ['investigator'], tokens)).statusCode).toBe(200);
    expect((await reveal(harness, ['support'], tokens)).statusCode).toBe(200);
    const text = await auditText(harness.testDb);
    const logs = harness.logs.join('\n');
    for (const { value } of Object.values(sample)) {
      expect(text).not.toContain(value);
      expect(logs).not.toContain(value);
    }
    expect(logs).not.toMatch(/eyJ[A-Za-z0-9_-]+\.eyJ/);
  });
});
