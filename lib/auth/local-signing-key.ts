import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, SignJWT, type JWK } from 'jose';

/** Issuer and audience of tokens minted for the local stack (`npm run token`). */
export const LOCAL_ISSUER = 'tokenvault-local';
export const LOCAL_AUDIENCE = 'tokenvault-reveal-api';
export const LOCAL_ALGORITHM = 'ES256';

const PRIVATE_KEY_FILE = 'signing-key.pem';

export interface LocalSigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SPKI PEM: pass as JWT_PUBLIC_KEY. */
  publicKeyPem: string;
  /** Public JWK with `kid`, `alg` and `use` set. */
  publicJwk: JWK;
  kid: string;
  issuer: string;
  audience: string;
  algorithm: typeof LOCAL_ALGORITHM;
}

/**
 * The development identity provider: an ES256 key pair kept in `<dir>/signing-key.pem`
 * (mode 0600, directory 0700), created on first call. Concurrent first calls agree on one
 * key: the file is created exclusively and the loser reads the winner's key.
 * NOT FOR PRODUCTION: production verifies tokens of the company's identity provider (JWKS).
 */
export async function ensureLocalSigningKey(dir: string): Promise<LocalSigningKey> {
  const file = join(dir, PRIVATE_KEY_FILE);
  const privateKey = createPrivateKey(await loadOrCreatePem(dir, file));
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`${file} is not a P-256 (ES256) private key`);
  }
  const publicKey = createPublicKey(privateKey);
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return {
    privateKey,
    publicKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    publicJwk: { ...jwk, kid, alg: LOCAL_ALGORITHM, use: 'sig' },
    kid,
    issuer: LOCAL_ISSUER,
    audience: LOCAL_AUDIENCE,
    algorithm: LOCAL_ALGORITHM,
  };
}

export interface MintOptions {
  sub: string;
  roles: string[];
  /** jose time span: `15m`, `1h`, or seconds. */
  ttl?: string | number;
  rolesClaim?: string;
}

/** A token the local stack accepts (what an identity provider would issue). */
export async function mintLocalToken(key: LocalSigningKey, options: MintOptions): Promise<string> {
  return new SignJWT({ [options.rolesClaim ?? 'roles']: options.roles })
    .setProtectedHeader({ alg: key.algorithm, kid: key.kid, typ: 'JWT' })
    .setSubject(options.sub)
    .setIssuer(key.issuer)
    .setAudience(key.audience)
    .setIssuedAt()
    .setExpirationTime(typeof options.ttl === 'number' ? `${options.ttl}s` : (options.ttl ?? '15m'))
    .sign(key.privateKey);
}

async function loadOrCreatePem(dir: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  // Written completely under a private name, then linked into place: link fails if another
  // process won the race, and nobody ever reads a half-written key.
  const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(pem);
  } finally {
    await handle.close();
  }
  try {
    await link(temporary, file);
    return pem;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return readFile(file, 'utf8');
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}
