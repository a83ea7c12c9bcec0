import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../lib/errors.js';
import { ensureLocalSigningKey, LOCAL_AUDIENCE, LOCAL_ISSUER, mintLocalToken, type LocalSigningKey } from '../../../../lib/auth/local-signing-key.js';
import { AuthenticationError, createJwtVerifier } from '../../../../services/reveal-api/auth/jwt-verifier.js';
import type { JwtConfig } from '../../../../services/reveal-api/config.js';

let dir: string;
let key: LocalSigningKey;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-verifier-'));
  key = await ensureLocalSigningKey(dir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config = (overrides: Partial<JwtConfig> = {}): JwtConfig => ({
  source: { kind: 'public-key', key: key.publicKeyPem },
  issuer: LOCAL_ISSUER,
  audience: [LOCAL_AUDIENCE],
  rolesClaim: 'roles',
  algorithms: undefined,
  clockToleranceSeconds: 0,
  ...overrides,
});

describe('JWT verifier', () => {
  it('derives the algorithm allow-list from the key: ES256 only for a P-256 key', () => {
    expect(createJwtVerifier(config()).algorithms).toEqual(['ES256']);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(createJwtVerifier(config({ source: { kind: 'public-key', key: rsa } })).algorithms).toEqual(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']);
    expect(() => createJwtVerifier(config({ algorithms: ['RS256'] }))).toThrow(ConfigError);
  });

  it('accepts the public key as a JWK, and PEM with escaped newlines', async () => {
    const token = await mintLocalToken(key, { sub: 'alice', roles: ['investigator'] });
    const fromJwk = createJwtVerifier(config({ source: { kind: 'public-key', key: JSON.stringify(await exportJWK(key.publicKey)) } }));
    expect(await fromJwk.verify(token)).toEqual({ sub: 'alice', roles: ['investigator'] });
    const oneLine = createJwtVerifier(config({ source: { kind: 'public-key', key: key.publicKeyPem.replaceAll('\n', '\\n') } }));
    expect((await oneLine.verify(token)).sub).toBe('alice');
    expect(() => createJwtVerifier(config({ source: { kind: 'public-key', key: 'not a key' } }))).toThrow(ConfigError);
  });

  it('reads roles from a configurable, possibly nested claim', async () => {
    const token = await mintLocalToken(key, { sub: 'alice', roles: ['auditor'], rolesClaim: 'realm_access' });
    // realm_access is the array here; a nested path is realm_access.roles in Keycloak tokens.
    expect((await createJwtVerifier(config({ rolesClaim: 'realm_access' })).verify(token)).roles).toEqual(['auditor']);
    await expect(createJwtVerifier(config({ rolesClaim: 'realm_access.roles' })).verify(token)).rejects.toMatchObject({ reason: 'roles_claim_invalid' });
  });

  it('re-checks expiry on every use of a cached verification', async () => {
    let now = Date.now();
    const verifier = createJwtVerifier(config(), () => now);
    const token = await mintLocalToken(key, { sub: 'alice', roles: ['investigator'], ttl: 60 });
    expect((await verifier.verify(token)).sub).toBe('alice');
    now += 10_000;
    expect((await verifier.verify(token)).sub).toBe('alice');
    now += 120_000;
    await expect(verifier.verify(token)).rejects.toBeInstanceOf(AuthenticationError);
  });
});
