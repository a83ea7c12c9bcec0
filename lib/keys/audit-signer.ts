import type { KeyObject } from 'node:crypto';
import type { KeyProviderConfig } from '../config/shared.js';

/**
 * Signs audit checkpoints with an asymmetric key the database cannot use. Verifiers need
 * only the public key; the private key stays in KMS (production) or a local file (npm start).
 */
export interface AuditSigner {
  /** SHA-256 hex of the DER SubjectPublicKeyInfo: the key_id in every checkpoint. */
  readonly keyId: string;
  /** `aws-kms:<arn>` or `local-only` (never a file path: it is published): written into checkpoints for people. */
  readonly label: string;
  readonly publicKey: KeyObject;
  readonly publicKeyPem: string;
  /** ECDSA P-256 / SHA-256 signature of the message, DER-encoded. */
  sign(message: Buffer): Promise<Buffer>;
  close(): void;
}

/** Where the signing key lives: the same two kinds as the data keys' root (a KMS key, or a local file). */
export type AuditSignerConfig = KeyProviderConfig;
