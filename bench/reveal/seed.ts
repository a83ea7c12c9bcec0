import { randomInt } from 'node:crypto';
import type { Database } from '../../db/client.js';
import { seal } from '../../lib/crypto/aead.js';
import type { PiiField } from '../../lib/crypto/normalize.js';
import { vaultAad } from '../../lib/crypto/vault-context.js';
import type { DataKeyRing } from '../../lib/keys/data-key-ring.js';
import type { Tokenizer } from '../../lib/crypto/tokens.js';
import { linkEntries, type AuditEntry } from '../../lib/audit/entry.js';
import { INSERT_ROWS, READ_HEAD } from '../../lib/audit/sql.js';

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

/**
 * Appends `count` reveal rows to the audit chain, linked and hashed exactly as the API links
 * them (linkEntries), in transactions of 5,000: an audit log of realistic size for the export cases.
 */
export async function seedAuditLog(owner: Database, count: number, tokens: readonly string[]): Promise<void> {
  const head = await owner.pool.query<{ seq: string; hash: Buffer }>(READ_HEAD);
  let seq = Number(head.rows[0]?.seq ?? 0);
  let hash: Buffer | null = head.rows[0]?.hash ?? null;
  const start = Date.now() - count;
  for (let done = 0; done < count; ) {
    const size = Math.min(5000, count - done);
    const entries = Array.from({ length: size }, (_, index): AuditEntry => {
      const token = tokens[(done + index) % tokens.length] ?? '';
      return {
        action: 'reveal',
        actor: `bench-seed-${(done + index) % 50}`,
        roles: ['bench-unbudgeted'],
        clientAddress: '127.0.0.1',
        requestId: `seed-${done + index}`,
        purpose: 'benchmark: an audit log of realistic size',
        ticket: 'BENCH-SEED',
        tokens: [token],
        fieldCounts: { [token.startsWith('ip_') ? 'ip' : 'device_id']: 1 },
        outcome: 'allowed',
        reason: 'revealed=1',
      };
    });
    const { rows, last } = linkEntries(entries, seq, hash, new Date(start + done).toISOString());
    await owner.pool.query(INSERT_ROWS, [JSON.stringify(rows)]);
    seq = last?.seq ?? seq;
    hash = last?.hash ?? hash;
    done += size;
  }
  await owner.pool.query('ANALYZE audit_log');
}
