import type { PoolClient } from 'pg';
import type { Database } from '../../../db/client.js';
import { withTransaction } from '../../../db/transaction.js';
import type { DataKeyPolicy } from '../../config/shared.js';
import { seal } from '../../crypto/aead.js';
import { isPiiField, type PiiField } from '../../crypto/normalize.js';
import { parseToken, Tokenizer } from '../../crypto/tokens.js';
import { vaultAad } from '../../crypto/vault-context.js';
import type { VaultRow } from '../../crypto/vault-row.js';
import { DecryptionError, TokenvaultError } from '../../errors.js';
import { DataKeyRing } from '../data-key-ring.js';
import type { KeyProvider } from '../key-provider.js';
import { LoginRowAuthenticator, toFields, type StoredLoginRow } from '../login-row-keys.js';
import { ROTATE_TOKEN_KEY_LOCK_ID, withExclusiveJob } from './advisory-lock.js';
import { ROTATION_DEFAULTS } from './config.js';

const PURPOSE = 'token-key' as const;

export type TokenKeyProgress =
  | { phase: 'settle'; version: number; secondsLeft: number }
  | { phase: 'retokenize'; version: number; done: number; total: number };

export interface RotateTokenKeyOptions {
  /** Data key rotation policy for the re-encrypted vault values. */
  dataKeyPolicy: DataKeyPolicy;
  /** Vault rows per transaction. */
  batchSize?: number;
  /**
   * Seconds to wait after activating the new version before old vault rows are replaced:
   * every ingestor must have switched by then (> TOKEN_KEY_REFRESH_SECONDS + one ingest batch).
   */
  settleSeconds?: number;
  /** Stop after this many batches; the next run resumes. */
  maxBatches?: number;
  /** Checked between batches (and during the settle wait). */
  signal?: AbortSignal;
  /** Awaited, so a caller can pace or observe the run between batches. */
  onProgress?: (progress: TokenKeyProgress) => void | Promise<void>;
}

export interface RotateTokenKeyResult {
  /** The active token key version the data is being moved to. */
  version: number;
  /** True when this run created `version`; false when it resumed an interrupted rotation. */
  created: boolean;
  vaultRowsRetokenized: number;
  /** Old vault rows that vanished between read and write (erased meanwhile): not recreated. */
  vaultRowsGone: number;
  userLoginTokensRewritten: Record<PiiField, number>;
  /**
   * user_logins rows whose tag did not hold when their tokens were rewritten (edited in the
   * database): their tokens move like everyone's, their tag is left as it was, so they keep
   * failing (and stay reported) instead of being re-tagged as genuine.
   */
  loginRowsFailedAuthentication: number;
  batches: number;
  completed: boolean;
  /** Rows still on an older version. user_logins rows whose vault value was erased stay there for good. */
  remaining: { vault: number; userLogins: number };
}

interface TokenKeyRow {
  version: number;
  state: string;
  wrapped_key: Buffer;
  kek_id: string;
  age_seconds: number;
}

/**
 * Rotates the HMAC token key while ingestors keep running.
 *
 * 1. Unless a rotation is already in progress, generates version N+1 (wrapped by the key
 *    provider) and, in one transaction, makes it the only 'active' version (the previous
 *    one becomes 'retired'). Running ingestors switch when they next re-read it.
 * 2. Waits `settleSeconds` after the activation so no ingestor still writes old tokens.
 * 3. Re-tokenises the vault in batches: each batch decrypts old values, computes their new
 *    tokens, and in ONE transaction deletes the old vault rows, inserts the re-encrypted
 *    new ones, and rewrites the matching tokens in user_logins. An interruption leaves
 *    every row either fully old or fully new; running the command again resumes.
 * 4. Repeats passes until no vault row of an older version remains.
 *
 * Equal values get equal new tokens, so duplicate detection and joins survive the rotation.
 * Tokens quoted elsewhere (audit rows, tickets) keep naming the retired version and no
 * longer reveal.
 */
export async function rotateTokenKey(database: Database, provider: KeyProvider, options: RotateTokenKeyOptions): Promise<RotateTokenKeyResult> {
  return withExclusiveJob(database, ROTATE_TOKEN_KEY_LOCK_ID, 'keys:rotate-token-key', () => run(database, provider, options));
}

async function run(database: Database, provider: KeyProvider, options: RotateTokenKeyOptions): Promise<RotateTokenKeyResult> {
  const batchSize = options.batchSize ?? ROTATION_DEFAULTS.batchSize;
  const settleSeconds = options.settleSeconds ?? ROTATION_DEFAULTS.settleSeconds;

  const { tokenizer, created, ageSeconds } = await activeOrNewVersion(database, provider, settleSeconds);
  const version = tokenizer.keyVersion;
  const result: RotateTokenKeyResult = {
    version,
    created,
    vaultRowsRetokenized: 0,
    vaultRowsGone: 0,
    userLoginTokensRewritten: { ip: 0, device_id: 0 },
    loginRowsFailedAuthentication: 0,
    batches: 0,
    completed: false,
    remaining: { vault: 0, userLogins: 0 },
  };
  const finish = async (completed: boolean): Promise<RotateTokenKeyResult> => {
    result.remaining = await remaining(database, version);
    result.completed = completed && result.remaining.vault === 0;
    return result;
  };

  if (!(await settle(version, settleSeconds - ageSeconds, options))) return finish(false);

  const ring = new DataKeyRing(database.db, provider, options.dataKeyPolicy);
  const authenticator = new LoginRowAuthenticator(database.pool, provider);
  try {
    let total = (await remaining(database, version)).vault;
    let done = 0;
    await options.onProgress?.({ phase: 'retokenize', version, done, total });
    // Later passes pick up rows an ingestor wrote with the old key after the first pass went by.
    for (let foundInPass = true; foundInPass; ) {
      foundInPass = false;
      let after = '';
      for (;;) {
        if (options.signal?.aborted === true || (options.maxBatches !== undefined && result.batches >= options.maxBatches)) {
          return await finish(false);
        }
        const rows = await oldVaultRows(database, version, after, batchSize);
        if (rows.length === 0) break;
        foundInPass = true;
        await retokenizeBatch(database, ring, authenticator, tokenizer, rows, result);
        result.batches += 1;
        done += rows.length;
        total = Math.max(total, done);
        after = rows[rows.length - 1]?.token ?? after;
        await options.onProgress?.({ phase: 'retokenize', version, done, total });
      }
    }
    return await finish(true);
  } finally {
    ring.clear();
  }
}

/** The version to rotate to: the active one when a rotation is in progress, else a new one. */
async function activeOrNewVersion(
  database: Database,
  provider: KeyProvider,
  settleSeconds: number,
): Promise<{ tokenizer: Tokenizer; created: boolean; ageSeconds: number }> {
  const { rows } = await database.pool.query<TokenKeyRow>(
    `SELECT version, state, wrapped_key, kek_id, extract(epoch FROM now() - created_at)::float8 AS age_seconds
       FROM token_keys ORDER BY version DESC`,
  );
  const active = rows.find((row) => row.state === 'active');
  if (active === undefined) {
    throw new TokenvaultError('token_key_missing', 'no active token key: start the ingestor once (it creates version 1) before rotating');
  }
  const hasOlder = rows.some((row) => row.version < active.version);
  if (hasOlder && (active.age_seconds < settleSeconds || (await remaining(database, active.version)).vault > 0)) {
    const key = await provider.decryptDataKey({ wrapped: active.wrapped_key, kekId: active.kek_id }, PURPOSE);
    return { tokenizer: new Tokenizer(key, active.version), created: false, ageSeconds: active.age_seconds };
  }

  const generated = await provider.generateDataKey(PURPOSE);
  const version = await withTransaction(database.pool, async (client) => {
      // Serialises with an ingestor creating version 1 and keeps "exactly one active" true at every instant.
      await client.query('LOCK TABLE token_keys IN SHARE ROW EXCLUSIVE MODE');
      const { rows: top } = await client.query<{ version: number }>('SELECT coalesce(max(version), 0)::int AS version FROM token_keys');
      const next = (top[0]?.version ?? 0) + 1;
      await client.query(`INSERT INTO token_keys (version, wrapped_key, kek_id, state) VALUES ($1, $2, $3, 'active')`, [
        next,
        generated.wrapped,
        generated.kekId,
      ]);
      await client.query(`UPDATE token_keys SET state = 'retired' WHERE state = 'active' AND version <> $1`, [next]);
      return next;
  });
  return { tokenizer: new Tokenizer(generated.plaintext, version), created: true, ageSeconds: 0 };
}

/** Waits out the rest of the settle period; false when aborted meanwhile. */
async function settle(version: number, seconds: number, options: RotateTokenKeyOptions): Promise<boolean> {
  let left = Math.ceil(seconds);
  while (left > 0) {
    if (options.signal?.aborted === true) return false;
    await options.onProgress?.({ phase: 'settle', version, secondsLeft: left });
    await sleep(1000, options.signal);
    left -= 1;
  }
  return options.signal?.aborted !== true;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((done) => {
    const timer = setTimeout(finish, ms);
    function finish(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      done();
    }
    signal?.addEventListener('abort', finish, { once: true });
  });
}

async function oldVaultRows(database: Database, version: number, after: string, limit: number): Promise<VaultRow[]> {
  const { rows } = await database.pool.query<VaultRow>(
    `SELECT token, field, ciphertext, data_key_id
       FROM pii_vault
      WHERE token > $1 AND token_key_version < $2
      ORDER BY token
      LIMIT $3`,
    [after, version, limit],
  );
  return rows;
}

async function retokenizeBatch(
  database: Database,
  ring: DataKeyRing,
  authenticator: LoginRowAuthenticator,
  tokenizer: Tokenizer,
  rows: VaultRow[],
  result: RotateTokenKeyResult,
): Promise<void> {
  // Crypto first, outside the transaction: it holds row locks only for the writes.
  const { id: dataKeyId, key } = await ring.acquire(rows.length);
  const moves = await Promise.all(
    rows.map(async (row) => {
      if (!isPiiField(row.field)) throw new TokenvaultError('vault_field_unknown', `vault row ${row.token} has unknown field '${row.field}'`);
      let plaintext: Buffer;
      try {
        plaintext = await ring.decrypt(row.data_key_id, row.ciphertext, vaultAad(row.token));
      } catch (cause) {
        throw new DecryptionError(`vault row ${row.token} does not decrypt; rotation stopped before changing it`, { cause });
      }
      // Vault values are stored canonical, so the new token equals what the ingestor computes.
      const newToken = tokenizer.tokenizeCanonical(row.field, plaintext.toString('utf8'));
      const ciphertext = seal(key, plaintext, vaultAad(newToken));
      plaintext.fill(0);
      return { oldToken: row.token, newToken, field: row.field, ciphertext };
    }),
  );

  // Every tag key unwrapped before rows are locked: no KMS round trip inside the transaction.
  await authenticator.loadAll();
  result.vaultRowsRetokenized += await withTransaction(database.pool, async (client) => {
      // Only rows still present move: a value erased meanwhile must not come back.
      const { rows: deleted } = await client.query<{ token: string }>(
        'DELETE FROM pii_vault WHERE token = ANY($1::text[]) AND token_key_version < $2 RETURNING token',
        [moves.map((m) => m.oldToken), tokenizer.keyVersion],
      );
      const present = new Set(deleted.map((row) => row.token));
      const moving = moves.filter((m) => present.has(m.oldToken));
      result.vaultRowsGone += moves.length - moving.length;
      if (moving.length === 0) return 0;
      await client.query(
        `INSERT INTO pii_vault (token, field, ciphertext, data_key_id, token_key_version)
         SELECT token, field, ciphertext, $4, $5 FROM unnest($1::text[], $2::text[], $3::bytea[]) AS v(token, field, ciphertext)
         ON CONFLICT (token) DO NOTHING`,
        [moving.map((m) => m.newToken), moving.map((m) => m.field), moving.map((m) => m.ciphertext), dataKeyId, tokenizer.keyVersion],
      );
      for (const field of ['ip', 'device_id'] as const) {
        const of = moving.filter((m) => m.field === field);
        if (of.length === 0) continue;
        result.userLoginTokensRewritten[field] += await rewriteLogins(client, authenticator, field, of, tokenizer, result);
      }
      return moving.length;
  });
}

/**
 * Rewrites one token column. A row's token_key_version moves to the new version only when
 * its other token column is already new, so the column never claims more than is true. Each
 * row's tag is checked under its own key version first: a row that verifies is tagged again
 * under the new version (over its new tokens); a row without a tag (ingested before row
 * authentication) stays without one; a row whose tag fails keeps that tag, so the rotation
 * never turns an edited row into one that verifies.
 */
async function rewriteLogins(
  client: PoolClient,
  authenticator: LoginRowAuthenticator,
  field: PiiField,
  moves: { oldToken: string; newToken: string }[],
  tokenizer: Tokenizer,
  result: RotateTokenKeyResult,
): Promise<number> {
  const column = field === 'ip' ? 'masked_ip' : 'masked_device_id';
  const version = tokenizer.keyVersion;
  const newTokens = new Map(moves.map((move) => [move.oldToken, move.newToken]));
  const { rows } = await client.query<StoredLoginRow & { token_key_version: number }>(
    `SELECT message_id, user_id, to_char(create_date, 'YYYY-MM-DD') AS create_date,
            (extract(epoch FROM sent_at) * 1000)::text AS sent_at_ms, device_type, locale, app_version, masked_ip, masked_device_id,
            row_mac, row_mac_key_version, token_key_version
       FROM user_logins WHERE ${column} = ANY($1::text[])
      ORDER BY message_id, create_date
        FOR UPDATE`,
    [moves.map((move) => move.oldToken)],
  );
  if (rows.length === 0) return 0;
  const updates = await Promise.all(
    rows.map(async (row) => {
      const check = await authenticator.check(row);
      const next: StoredLoginRow = { ...row, [column]: newTokens.get(row[column]) ?? row[column] };
      const otherIsNew = parseToken(field === 'ip' ? next.masked_device_id : next.masked_ip)?.keyVersion === version;
      let mac = row.row_mac;
      let macVersion = row.row_mac_key_version;
      const fields = toFields(next);
      if (check.status === 'verified' && fields !== undefined) {
        mac = tokenizer.rowMac.tag(fields);
        macVersion = version;
      } else if (check.status === 'failed') {
        result.loginRowsFailedAuthentication += 1;
      }
      return { row, next, tokenKeyVersion: otherIsNew ? version : row.token_key_version, mac, macVersion };
    }),
  );
  const { rowCount } = await client.query(
    `UPDATE user_logins AS u
        SET masked_ip = v.masked_ip, masked_device_id = v.masked_device_id, token_key_version = v.token_key_version,
            row_mac = v.row_mac, row_mac_key_version = v.row_mac_key_version
       FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::smallint[], $6::bytea[], $7::smallint[])
            AS v(message_id, create_date, masked_ip, masked_device_id, token_key_version, row_mac, row_mac_key_version)
      WHERE u.message_id = v.message_id AND u.create_date = v.create_date`,
    [
      updates.map((u) => u.row.message_id),
      updates.map((u) => u.row.create_date),
      updates.map((u) => u.next.masked_ip),
      updates.map((u) => u.next.masked_device_id),
      updates.map((u) => u.tokenKeyVersion),
      updates.map((u) => u.mac),
      updates.map((u) => u.macVersion),
    ],
  );
  return rowCount ?? 0;
}

async function remaining(database: Database, version: number): Promise<{ vault: number; userLogins: number }> {
  const { rows } = await database.pool.query<{ vault: string; logins: string }>(
    `SELECT (SELECT count(*) FROM pii_vault WHERE token_key_version < $1) AS vault,
            (SELECT count(*) FROM user_logins WHERE token_key_version < $1) AS logins`,
    [version],
  );
  return { vault: Number(rows[0]?.vault ?? 0), userLogins: Number(rows[0]?.logins ?? 0) };
}
