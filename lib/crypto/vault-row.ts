/**
 * One pii_vault row (db/schema.ts `piiVault`) as the ingestor writes it and the reveal-api and
 * the token-key rotation read it: the original value of `token`, sealed with AES-256-GCM
 * (aead.ts; the token bound as additional data, vault-context.ts) under data key `data_key_id`.
 * Keys are the column names, as a SELECT returns them.
 */
export interface VaultRow {
  token: string;
  /** The PiiField the token names; read back as text, so a reader checks it (isPiiField). */
  field: string;
  ciphertext: Buffer;
  data_key_id: number;
}
