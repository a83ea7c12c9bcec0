import type pg from 'pg';
import { open } from '../../../lib/crypto/aead.js';
import { isPiiField, type PiiField } from '../../../lib/crypto/normalize.js';
import { vaultAad } from '../../../lib/crypto/vault-context.js';
import type { VaultRow } from '../../../lib/crypto/vault-row.js';
import type { DataKeyRing } from '../../../lib/keys/data-key-ring.js';

export type VaultLookup =
  | { token: string; field: PiiField; value: string }
  | { token: string; error: 'undecryptable' };

/**
 * Reads originals back from pii_vault: one query for the whole batch, and one key-ring
 * await per distinct data key (each unwrapped once through the key provider, then cached).
 */
export class Vault {
  constructor(
    private readonly pool: pg.Pool,
    private readonly ring: DataKeyRing,
  ) {}

  /** Which of `tokens` have a vault row (nothing decrypted): what an erasure would shred. */
  async present(tokens: readonly string[]): Promise<Set<string>> {
    if (tokens.length === 0) return new Set();
    const { rows } = await this.pool.query<{ token: string }>({
      name: 'vault-present',
      text: 'SELECT token FROM pii_vault WHERE token = ANY($1::text[])',
      values: [tokens],
    });
    return new Set(rows.map((row) => row.token));
  }

  /** Tokens absent from the result are not in the vault (never stored, or erased). */
  async lookup(tokens: readonly string[]): Promise<Map<string, VaultLookup>> {
    const found = new Map<string, VaultLookup>();
    if (tokens.length === 0) return found;
    const { rows } = await this.pool.query<VaultRow>({
      name: 'vault-lookup',
      text: 'SELECT token, field, ciphertext, data_key_id FROM pii_vault WHERE token = ANY($1::text[])',
      values: [tokens],
    });
    const keys = new Map<number, Buffer>();
    for (const id of new Set(rows.map((row) => row.data_key_id))) keys.set(id, await this.ring.keyById(id));
    for (const row of rows) {
      const key = keys.get(row.data_key_id);
      if (key === undefined || !isPiiField(row.field)) {
        found.set(row.token, { token: row.token, error: 'undecryptable' });
        continue;
      }
      try {
        // The token is bound as additional data: a ciphertext copied onto another row fails here.
        const value = open(key, row.ciphertext, vaultAad(row.token)).toString('utf8');
        found.set(row.token, { token: row.token, field: row.field, value });
      } catch {
        found.set(row.token, { token: row.token, error: 'undecryptable' });
      }
    }
    return found;
  }
}

/** Deletes vault rows inside the caller's transaction; returns the tokens that existed. */
export async function deleteVaultRows(client: pg.PoolClient, tokens: readonly string[]): Promise<Set<string>> {
  if (tokens.length === 0) return new Set();
  const { rows } = await client.query<{ token: string }>({
    name: 'vault-erase',
    text: 'DELETE FROM pii_vault WHERE token = ANY($1::text[]) RETURNING token',
    values: [tokens],
  });
  return new Set(rows.map((row) => row.token));
}
