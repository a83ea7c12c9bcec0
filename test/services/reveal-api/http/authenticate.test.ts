import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, UnsecuredJWT, exportJWK, type JWK } from 'jose';
import { afterAll, describe, expect } from 'vitest';
import { LOCAL_AUDIENCE, LOCAL_ISSUER } from '../../../../lib/auth/local-signing-key.js';
import type { RevealApp } from '../../../../services/reveal-api/app.js';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { auditRows, PURPOSE, type RevealHarness, type SeededValue } from '../../../support/reveal-harness.js';

const it = revealTestFor();

// The file's shared harness, bound once for the helpers below.
let harness: RevealHarness;
let ip: SeededValue;
let jwks: { server: Server; url: string; keys: JWK[] };

const now = () => Math.floor(Date.now() / 1000);

it.beforeAll(async ({ harness: shared, sample }) => {
  harness = shared;
  ip = sample.ip;
  const keys: JWK[] = [harness.signingKey.publicJwk];
  const server = createServer((request, response) => {
    if (request.url !== '/.well-known/jwks.json') return void response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  jwks = { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`, keys };
});
afterAll(async () => {
  await new Promise((resolve) => jwks?.server.close(resolve));
});

/** A token signed by the trusted key with arbitrary claims and header. */
function signed(claims: Record<string, unknown>, header: Record<string, unknown> = {}) {
  return new SignJWT({ roles: ['investigator'], ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: harness.signingKey.kid, ...header })
    .sign(harness.signingKey.privateKey);
}

const valid = () => ({ sub: 'mallory', iss: LOCAL_ISSUER, aud: LOCAL_AUDIENCE, iat: now(), exp: now() + 600 });

let nextAddress = 1;

/** Each refusal from its own client address: refusals without a verified identity are accounted per address, action and reason. */
async function revealWith(app: RevealApp, authorization: string | undefined) {
  return app.inject({
    method: 'POST',
    url: '/reveal',
    headers: authorization === undefined ? {} : { authorization },
    payload: { tokens: [ip.token], purpose: PURPOSE },
    remoteAddress: `203.0.113.${nextAddress++}`,
  });
}

async function expectRejectedAndAudited(app: RevealApp, authorization: string | undefined, reason: string) {
  const before = (await auditRows(harness.testDb)).length;
  const response = await revealWith(app, authorization);
  expect(response.statusCode).toBe(401);
  expect(response.headers['www-authenticate']).toMatch(/^Bearer realm="tokenvault-reveal-api"/);
  expect(response.json()).toEqual({ error: { code: 'unauthenticated', message: expect.any(String) } });
  expect(response.body).not.toContain('199.172');
  const rows = await auditRows(harness.testDb);
  expect(rows).toHaveLength(before + 1);
  // Nothing an unverified caller sent is stored: who it claimed to be, sizes and a digest instead.
  expect(rows.at(-1)).toMatchObject({ action: 'reveal', outcome: 'unauthenticated', actor: null, roles: [], tokens: [], purpose: null, ticket: null });
  expect(rows.at(-1)?.reason).toMatch(new RegExp(`^${reason} (claimed_sub="[^"]*" \\(unverified\\) )?sent: body_bytes=\\d+ body_sha256=[0-9a-f]{64} fields=tokens\\[1\\],purpose:${PURPOSE.length}ch$`));
}

describe('bearer JWT authentication', () => {
  it('accepts a token signed by the configured key', async () => {
    const response = await revealWith(harness.app, `Bearer ${await signed(valid())}`);
    expect(response.statusCode).toBe(200);
  });

  it('rejects a missing Authorization header with a bare Bearer challenge', async () => {
    await expectRejectedAndAudited(harness.app, undefined, 'token_missing');
    const response = await revealWith(harness.app, undefined);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="tokenvault-reveal-api"');
  });

  it('rejects a non-Bearer scheme', async () => {
    await expectRejectedAndAudited(harness.app, 'Basic YWxpY2U6c2VjcmV0', 'malformed_authorization');
  });

  it('rejects an unsigned token (alg none)', async () => {
    const token = new UnsecuredJWT({ roles: ['investigator'] }).setSubject('mallory').setIssuer(LOCAL_ISSUER).setAudience(LOCAL_AUDIENCE).setExpirationTime('5m').encode();
    await expectRejectedAndAudited(harness.app, `Bearer ${token}`, 'algorithm_not_allowed');
  });

  it('rejects HS256 "signed" with the public key (algorithm confusion)', async () => {
    const token = await new SignJWT({ roles: ['investigator'], ...valid() })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(Buffer.from(harness.signingKey.publicKeyPem));
    await expectRejectedAndAudited(harness.app, `Bearer ${token}`, 'algorithm_not_allowed');
  });

  it('rejects an expired token', async () => {
    await expectRejectedAndAudited(harness.app, `Bearer ${await signed({ ...valid(), iat: now() - 7200, exp: now() - 3600 })}`, 'token_expired');
  });

  it('rejects a token that is not yet valid', async () => {
    await expectRejectedAndAudited(harness.app, `Bearer ${await signed({ ...valid(), nbf: now() + 3600 })}`, 'token_not_yet_valid');
  });

  it('rejects a wrong issuer', async () => {
    await expectRejectedAndAudited(harness.app, `Bearer ${await signed({ ...valid(), iss: 'https://evil.example' })}`, 'claim_invalid_iss');
  });

  it('rejects a wrong audience', async () => {
    await expectRejectedAndAudited(harness.app, `Bearer ${await signed({ ...valid(), aud: 'another-service' })}`, 'claim_invalid_aud');
  });

  it('rejects a token without a roles claim', async () => {
    await expectRejectedAndAudited(harness.app, `Bearer ${await signed({ ...valid(), roles: undefined })}`, 'roles_claim_invalid');
  });

  it('rejects a token without sub or without exp', async () => {
    await expectRejectedAndAudited(harness.app, `Bearer ${await signed({ ...valid(), sub: undefined })}`, 'claim_invalid_sub');
    await expectRejectedAndAudited(harness.app, `Bearer ${await signed({ ...valid(), exp: undefined })}`, 'claim_invalid_exp');
  });

  it('rejects a tampered payload', async () => {
    const [header, , signature] = (await signed({ ...valid(), roles: ['support'] })).split('.');
    const payload = Buffer.from(JSON.stringify({ ...valid(), roles: ['investigator'] })).toString('base64url');
    await expectRejectedAndAudited(harness.app, `Bearer ${header}.${payload}.${signature}`, 'signature_invalid');
  });

  it('rejects a token signed by another key', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const token = await new SignJWT({ roles: ['investigator'], ...valid() }).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
    await expectRejectedAndAudited(harness.app, `Bearer ${token}`, 'signature_invalid');
  });

  it('rejects malformed tokens', async () => {
    await expectRejectedAndAudited(harness.app, 'Bearer abc.def', 'malformed_token');
    await expectRejectedAndAudited(harness.app, 'Bearer not-a-jwt', 'malformed_token');
    await expectRejectedAndAudited(harness.app, 'Bearer eyJhbGciOiJFUzI1NiJ9.e30.', 'signature_invalid');
  });

  describe('with keys from a JWKS endpoint', () => {
    let app: RevealApp;
    it.beforeAll(async () => {
      app = await harness.buildApp({ JWT_JWKS_URL: jwks.url, JWT_PUBLIC_KEY: undefined });
    });

    it('accepts a token whose kid is in the key set', async () => {
      expect((await revealWith(app, `Bearer ${await signed(valid())}`)).statusCode).toBe(200);
    });

    it('rejects a token whose kid is not in the key set', async () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      // The rogue key is really absent from the served key set (by kid and by key material).
      const rogue = await exportJWK(publicKey);
      const served = (await (await fetch(jwks.url)).json()) as { keys: { kid?: string; x?: string }[] };
      expect(served.keys.length).toBeGreaterThan(0);
      expect(served.keys.map((key) => key.kid)).not.toContain('rogue-key');
      expect(served.keys.map((key) => key.x)).not.toContain(rogue.x);
      const token = await new SignJWT({ roles: ['investigator'], ...valid() }).setProtectedHeader({ alg: 'ES256', kid: 'rogue-key' }).sign(privateKey);
      await expectRejectedAndAudited(app, `Bearer ${token}`, 'unknown_key');
    });

    it('answers 503, not 401, when the key set cannot be fetched', async () => {
      const unreachable = await harness.buildApp({ JWT_JWKS_URL: 'http://127.0.0.1:9/jwks.json', JWT_PUBLIC_KEY: undefined });
      const response = await revealWith(unreachable, `Bearer ${await signed(valid())}`);
      expect(response.statusCode).toBe(503);
      expect(response.json().error.code).toBe('auth_unavailable');
      expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ outcome: 'failed', reason: expect.stringMatching(/^auth_unavailable claimed_sub="mallory" \(unverified\) sent: /) });
    });
  });

  describe('with a shared secret (local use)', () => {
    const secret = 'a-local-development-secret-of-32+chars';
    it('accepts HS256 and refuses asymmetric tokens', async () => {
      const app = await harness.buildApp({ JWT_PUBLIC_KEY: undefined, JWT_SECRET: secret });
      const hs = await new SignJWT({ roles: ['investigator'], ...valid() }).setProtectedHeader({ alg: 'HS256' }).sign(Buffer.from(secret));
      expect((await revealWith(app, `Bearer ${hs}`)).statusCode).toBe(200);
      await expectRejectedAndAudited(app, `Bearer ${await signed(valid())}`, 'algorithm_not_allowed');
    });
  });
});
