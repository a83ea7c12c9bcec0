/**
 * A key provider holds the key-encryption key (KEK) and never lets it out: it generates
 * data keys and hands back both the plaintext (kept in memory only) and the wrapped form
 * (stored in the database). AWS KMS in production, a local keyring file for development.
 */
export type KeyPurpose = 'vault-data-key' | 'token-key';

export interface WrappedKey {
  /** The data key encrypted under the KEK. */
  wrapped: Buffer;
  /** Which KEK wrapped it (KMS key ARN, or `local:<fingerprint>`). */
  kekId: string;
}

export interface GeneratedKey extends WrappedKey {
  plaintext: Buffer;
}

export interface KeyProvider {
  /** Human-readable, for start-up logs. */
  readonly description: string;
  generateDataKey(purpose: KeyPurpose): Promise<GeneratedKey>;
  decryptDataKey(key: WrappedKey, purpose: KeyPurpose): Promise<Buffer>;
  /** Re-encrypts a wrapped key under the provider's current KEK without exposing it (KMS ReEncrypt). */
  rewrapDataKey(key: WrappedKey, purpose: KeyPurpose): Promise<WrappedKey>;
  /** Checks that the KEK is usable; throws a KeyProviderError naming the problem. */
  check(): Promise<void>;
  close(): void;
}

/** Binds a wrapped key to what it is for: a token key cannot be passed off as a vault data key. */
export function encryptionContext(purpose: KeyPurpose): Record<string, string> {
  return { 'tokenvault:purpose': purpose };
}
