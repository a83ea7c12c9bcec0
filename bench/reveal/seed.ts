import { randomInt } from 'node:crypto';
import type { Database } from '../../db/client.js';
import { seal } from '../../lib/crypto/aead.js';
import type { PiiField } from '../../lib/crypto/normalize.js';
import { vaultAad } from '../../lib/crypto/vault-context.js';
import type { DataKeyRing } from '../../lib/keys/data-key-ring.js';
import type { Tokenizer } from '../../lib/crypto/tokens.js';

/** Fills pii_vault with `count` distinct values, sealed exactly as the ingestor seals them. Returns their tokens. */
export async function seedVault(owner: Database, ring: DataKeyRing, tokenizer: Tokenizer, count: number): Promise<string[]> {
  const tokens = new Set<string>();
  const rows: { token: string; field: PiiField; ciphertext: Buffer }[] = [];
  const { id, key } = await ring.acquire(count);
  while (rows.length < count) {
    const field: PiiField = rows.length % 2 === 0 ? 'ip' : 'device_id';
    const value =
      field === 'ip'
        ? [randomInt(1, 224), randomInt(256), randomInt(256), randomInt(1, 255)].join('.')
        : `${randomInt(100, 1000)}-${randomInt(10, 100)}-${randomInt(1000, 10_000)}`;
    const token = tokenizer.tokenizeCanonical(field, value);
    if (tokens.has(token)) continue;
    tokens.add(token);
    rows.push({ token, field, ciphertext: seal(key, Buffer.from(value), vaultAad(token)) });
  }
  for (let start = 0; start < rows.length; start += 5000) {
    const chunk = rows.slice(start, start + 5000);
    await owner.pool.query(
      `INSERT INTO pii_vault (token, field, ciphertext, data_key_id, token_key_version)
       SELECT token, field, ciphertext, $4, $5 FROM unnest($1::text[], $2::text[], $3::bytea[]) AS v(token, field, ciphertext)`,
      [chunk.map((row) => row.token), chunk.map((row) => row.field), chunk.map((row) => row.ciphertext), id, tokenizer.keyVersion],
    );
  }
  await owner.pool.query('ANALYZE pii_vault');
  return [...tokens];
}
