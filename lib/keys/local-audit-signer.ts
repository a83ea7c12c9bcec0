import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { chmod, mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { keyIdOf } from '../audit/checkpoint.js';
import { KeyProviderError } from '../errors.js';
import type { AuditSigner } from './audit-signer.js';

/** The public key is written beside the private key, under this suffix, for auditors. */
export const PUBLIC_KEY_SUFFIX = '.pub.pem';

/**
 * LOCAL ONLY: a P-256 key in a PEM file (mode 0600), created on first start, its public key
 * written beside it. Whoever can read the file can forge checkpoints, so this is for
 * `npm start` and tests; production signs with AWS KMS (AUDIT_SIGNING_KEY_ID).
 */
export class LocalAuditSigner implements AuditSigner {
  readonly keyId: string;
  readonly label: string;
  readonly publicKey: KeyObject;
  readonly publicKeyPem: string;

  private constructor(private readonly privateKey: KeyObject) {
    this.publicKey = createPublicKey(privateKey);
    this.publicKeyPem = this.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    this.keyId = keyIdOf(this.publicKey);
    // Published with every checkpoint: a neutral label, never the private key's path (issue 17 finding 5).
    this.label = 'local-only';
  }

  static async open(file: string): Promise<LocalAuditSigner> {
    const privateKey = await loadOrCreate(file);
    const signer = new LocalAuditSigner(privateKey);
    await writeFile(`${file}${PUBLIC_KEY_SUFFIX}`, signer.publicKeyPem, { mode: 0o644 });
    return signer;
  }

  static fromKey(privateKey: KeyObject): LocalAuditSigner {
    return new LocalAuditSigner(privateKey);
  }

  async sign(message: Buffer): Promise<Buffer> {
    return sign('sha256', message, { key: this.privateKey, dsaEncoding: 'der' });
  }

  close(): void {}
}

async function loadOrCreate(file: string): Promise<KeyObject> {
  try {
    const key = createPrivateKey(await readFile(file, 'utf8'));
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new KeyProviderError('audit_key_invalid', `${file} is not an ECDSA P-256 private key (AUDIT_SIGNING_KEY_FILE)`);
    }
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (error instanceof KeyProviderError) throw error;
      throw new KeyProviderError('audit_key_unreadable', `cannot read the audit signing key ${file} (AUDIT_SIGNING_KEY_FILE)`, { cause: error });
    }
  }
  await mkdir(dirname(file), { recursive: true });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  // 'wx': two processes starting at once must not overwrite each other's key.
  try {
    const handle = await open(file, 'wx', 0o600);
    try {
      await handle.writeFile(pem);
    } finally {
      await handle.close();
    }
    await chmod(file, 0o600);
    return privateKey;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return createPrivateKey(await readFile(file, 'utf8'));
    throw error;
  }
}
