import { desc, eq } from 'drizzle-orm';
import type pg from 'pg';
import type { Db } from '../../db/client.js';
import { tokenKeys } from '../../db/schema.js';
import { Tokenizer } from '../crypto/tokens.js';
import { KeyProviderError } from '../errors.js';
import type { KeyProvider } from './key-provider.js';

const PURPOSE = 'token-key' as const;

/**
 * The active HMAC token key, unwrapped through the key provider. On a fresh database the
 * first caller generates version 1; concurrent first starts agree on one key because the
 * insert is conditional on the version not existing yet.
 */
export async function loadActiveTokenizer(db: Db, provider: KeyProvider): Promise<Tokenizer> {
  const existing = await activeRow(db);
  if (existing !== undefined) return unwrapTokenizer(existing, provider);
  const generated = await provider.generateDataKey(PURPOSE);
  await db
    .insert(tokenKeys)
    .values({ version: 1, wrappedKey: generated.wrapped, kekId: generated.kekId, state: 'active' })
    .onConflictDoNothing();
  const row = await activeRow(db);
  if (row === undefined) throw new KeyProviderError('token_key_missing', 'no active token key after creating one');
  return row.version === 1 && row.kekId === generated.kekId && row.wrappedKey.equals(generated.wrapped)
    ? new Tokenizer(generated.plaintext, 1)
    : unwrapTokenizer(row, provider);
}

/** Every token key version (active, pending, retired), for reveal-side lookups and rotation. */
export async function loadAllTokenizers(db: Db, provider: KeyProvider): Promise<Map<number, { tokenizer: Tokenizer; state: string }>> {
  const rows = await db.select().from(tokenKeys).orderBy(desc(tokenKeys.version));
  const result = new Map<number, { tokenizer: Tokenizer; state: string }>();
  for (const row of rows) result.set(row.version, { tokenizer: await unwrapTokenizer(row, provider), state: row.state });
  return result;
}

type TokenKeyRow = typeof tokenKeys.$inferSelect;

async function activeRow(db: Db): Promise<TokenKeyRow | undefined> {
  const [row] = await db.select().from(tokenKeys).where(eq(tokenKeys.state, 'active')).orderBy(desc(tokenKeys.version)).limit(1);
  return row;
}

async function unwrapTokenizer(row: TokenKeyRow, provider: KeyProvider): Promise<Tokenizer> {
  const key = await provider.decryptDataKey({ wrapped: row.wrappedKey, kekId: row.kekId }, PURPOSE);
  return new Tokenizer(key, row.version);
}

/** Version of the active token key (undefined on a fresh database): a cheap poll for key rotation. */
export async function activeTokenKeyVersion(pool: Pick<pg.Pool, 'query'>): Promise<number | undefined> {
  const { rows } = await pool.query<{ version: number }>({
    name: 'active-token-key-version',
    text: "SELECT version FROM token_keys WHERE state = 'active' ORDER BY version DESC LIMIT 1",
  });
  return rows[0]?.version;
}
