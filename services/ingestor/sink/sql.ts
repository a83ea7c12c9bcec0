import type pg from 'pg';
import { copyBytea, copyIn, copyNumber, copyText } from '../../../db/copy.js';
import { sqlState } from '../../../db/errors.js';
import { withTransaction } from '../../../db/transaction.js';
import type { LoginRow, PreparedBatch, QuarantineRow } from './prepare.js';

/** What one batch's rows did in the database. */
export interface Written {
  stored: number;
  /** Message ids of quarantine rows inserted now (not already there from an earlier delivery). */
  quarantined: Set<string>;
}

/**
 * The write path of a group of batches, one transaction, built on COPY (the database's fastest
 * way in, one round trip and one parse for any number of rows), in this order:
 * - logins: COPY straight into user_logins, which is what a first delivery needs; a redelivered
 *   message makes that COPY fail on the key (23505), and only then the group's logins go the
 *   idempotent way (staging table, ON CONFLICT DO NOTHING), which also counts duplicates;
 * - quarantine (rare): one INSERT … SELECT FROM unnest … ON CONFLICT DO NOTHING;
 * - vault values, last: COPY into a session-local staging table, then INSERT … SELECT … ON
 *   CONFLICT DO NOTHING (another batch or replica often stores the same new value at the same
 *   time). A new value's row stays locked from its insert until COMMIT, and a second writer
 *   storing the same value waits for that lock: written last, it is held for the COMMIT alone,
 *   not for the group's logins too (written first, the wait cost the sink a fifth of its
 *   throughput in bench:ingest, 17,000 vs 22,000 msg/s).
 * Every path inserts in one global order (logins and quarantine by message id, then vault by
 * token), so concurrent writers wait for each other's new rows but do not deadlock.
 */
export function writeBatches(pool: pg.Pool, batches: readonly PreparedBatch[]): Promise<Written[]> {
  return withTransaction(
    pool,
    async (client) => {
      const written = await insertLoginsOf(client, batches);
      await insertQuarantineOf(client, batches, written);
      await insertVault(client, batches);
      return written;
    },
    { begin: `${VAULT_TABLE_LOCK}; ${STAGING_TABLES}` },
  );
}

// Rows go in logins first, but the tables are locked vault first, at BEGIN: the order in which
// shredding and erasure lock them (shred_unreferenced_vault_values, person_erase_begin:
// pii_vault, then user_logins, SHARE ROW EXCLUSIVE). Taking user_logins first and pii_vault at
// the vault insert, a shred starting between the two would hold pii_vault while waiting for this
// transaction, and this transaction would wait for pii_vault: a deadlock. Locked here, a shred
// waits for the whole transaction, and so sees its logins before it checks which values are
// still referenced. ROW EXCLUSIVE is what the INSERT takes anyway; it conflicts with no other
// writer.
const VAULT_TABLE_LOCK = 'LOCK TABLE pii_vault IN ROW EXCLUSIVE MODE';

// Temporary (per session, no WAL), emptied at every commit or rollback; created by whichever
// backend the transaction lands on, so a transaction-mode pooler in front changes nothing. The
// ingestor role owns them: it needs no privilege beyond INSERT on the real tables.
const STAGING_TABLES = `SET LOCAL client_min_messages = warning;
CREATE TEMP TABLE IF NOT EXISTS pii_vault_stage (token text, field text, ciphertext bytea, data_key_id int, token_key_version smallint) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS user_logins_stage (batch int, ${'message_id text, user_id text, device_type text, masked_ip text, masked_device_id text, locale text, app_version text, app_version_major int, app_version_minor int, app_version_patch int, create_date date, sent_at timestamptz, token_key_version smallint, row_mac bytea, row_mac_key_version smallint'}) ON COMMIT DELETE ROWS`;

const LOGIN_COLUMNS =
  'message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version, app_version_major, app_version_minor, app_version_patch, create_date, sent_at, token_key_version, row_mac, row_mac_key_version';
const VAULT_COLUMNS = 'token, field, ciphertext, data_key_id, token_key_version';
const UNIQUE_VIOLATION = '23505';

// ON CONFLICT without a target: naming the columns needs SELECT on them, which the
// least-privilege ingestor role does not have. The only unique key a new row can hit is
// (message_id, create_date) for user_logins, message_id for quarantine and token for pii_vault.
async function insertVault(client: pg.PoolClient, batches: readonly PreparedBatch[]): Promise<void> {
  const byToken = new Map<string, { row: PreparedBatch['vault'][number]; dataKeyId: number; tokenKeyVersion: number }>();
  for (const batch of batches) {
    for (const row of batch.vault) {
      if (!byToken.has(row.token)) byToken.set(row.token, { row, dataKeyId: batch.dataKeyId, tokenKeyVersion: batch.tokenKeyVersion });
    }
  }
  if (byToken.size === 0) return;
  const lines: string[] = [];
  for (const { row, dataKeyId, tokenKeyVersion } of byToken.values()) {
    // Tokens and field names are plain ASCII (base64url, field prefix): nothing to escape.
    lines.push(`${row.token}\t${row.field}\t${copyBytea(row.ciphertext)}\t${dataKeyId}\t${tokenKeyVersion}\n`);
  }
  await copyIn(client, `COPY pii_vault_stage (${VAULT_COLUMNS}) FROM STDIN`, lines.join(''));
  // Sorted: every writer (other replicas too) takes the unique-index locks in the same order.
  await client.query(`INSERT INTO pii_vault (${VAULT_COLUMNS}) SELECT ${VAULT_COLUMNS} FROM pii_vault_stage ORDER BY token COLLATE "C" ON CONFLICT DO NOTHING`);
}

/**
 * All batches' logins at once. The ingestor role cannot read rows back (no RETURNING), so
 * per-batch counts come from row counts: when the direct COPY succeeds every row was new;
 * when the idempotent INSERT stores fewer rows than the group holds, it is undone to a
 * savepoint and repeated batch by batch to learn which batch held the duplicates.
 */
async function insertLoginsOf(client: pg.PoolClient, batches: readonly PreparedBatch[]): Promise<Written[]> {
  const written: Written[] = batches.map(() => ({ stored: 0, quarantined: new Set<string>() }));
  const rows = batches.flatMap((batch, index) => batch.logins.map((row) => ({ row, index, tokenKeyVersion: batch.tokenKeyVersion })));
  if (rows.length === 0) return written;
  // Sorted like the vault: concurrent writers take the unique-index locks in one order.
  rows.sort((a, b) => compare(a.row.messageId, b.row.messageId));

  await client.query('SAVEPOINT logins');
  try {
    await copyIn(client, `COPY user_logins (${LOGIN_COLUMNS}) FROM STDIN`, rows.map(({ row, tokenKeyVersion }) => `${loginLine(row, tokenKeyVersion)}\n`).join(''));
    batches.forEach((batch, index) => {
      (written[index] as Written).stored = batch.logins.length;
    });
    return written;
  } catch (error) {
    if (sqlState(error) !== UNIQUE_VIOLATION) throw error;
    // A redelivery: some row is already stored. The same rows, the idempotent way.
    await client.query('ROLLBACK TO SAVEPOINT logins');
  }
  await copyIn(
    client,
    `COPY user_logins_stage (batch, ${LOGIN_COLUMNS}) FROM STDIN`,
    rows.map(({ row, index, tokenKeyVersion }) => `${index}\t${loginLine(row, tokenKeyVersion)}\n`).join(''),
  );
  if (batches.length > 1) await client.query('SAVEPOINT logins_staged');
  const stored = await insertStagedLogins(client, undefined);
  if (stored === rows.length || batches.length === 1) {
    batches.forEach((batch, index) => {
      (written[index] as Written).stored = batches.length === 1 ? stored : batch.logins.length;
    });
    return written;
  }
  await client.query('ROLLBACK TO SAVEPOINT logins_staged');
  for (const [index, batch] of batches.entries()) {
    if (batch.logins.length > 0) (written[index] as Written).stored = await insertStagedLogins(client, index);
  }
  return written;
}

async function insertStagedLogins(client: pg.PoolClient, batch: number | undefined): Promise<number> {
  const { rowCount } = await client.query(
    `INSERT INTO user_logins (${LOGIN_COLUMNS})
     SELECT ${LOGIN_COLUMNS} FROM user_logins_stage ${batch === undefined ? '' : 'WHERE batch = $1'}
     ORDER BY message_id COLLATE "C"
     ON CONFLICT DO NOTHING`,
    batch === undefined ? [] : [batch],
  );
  return rowCount ?? 0;
}

/** One login in COPY text format, columns as LOGIN_COLUMNS. Tokens are base64url: never escaped. */
function loginLine(row: LoginRow, tokenKeyVersion: number): string {
  return (
    `${copyText(row.messageId)}\t${copyText(row.userId)}\t${copyText(row.deviceType)}\t${row.ipToken}\t${row.deviceIdToken}\t` +
    `${copyText(row.locale)}\t${copyText(row.appVersion)}\t${copyNumber(row.major)}\t${copyNumber(row.minor)}\t${copyNumber(row.patch)}\t` +
    `${row.createDate}\t${row.sentAtIso}\t${tokenKeyVersion}\t${copyBytea(row.mac)}\t${row.mac === null ? '\\N' : tokenKeyVersion}`
  );
}

/**
 * Quarantine rows in one statement when all are new; as for logins, rowCount is all the
 * ingestor role can learn, so a partial insert (a redelivered quarantined message) is undone
 * to a savepoint and repeated row by row to find which ones were new. Quarantine is rare.
 */
async function insertQuarantineOf(client: pg.PoolClient, batches: readonly PreparedBatch[], written: Written[]): Promise<void> {
  const rows = batches.flatMap((batch, index) => batch.quarantine.map((row) => ({ row, index, dataKeyId: batch.dataKeyId })));
  if (rows.length === 0) return;
  if (rows.length > 1) await client.query('SAVEPOINT quarantine');
  const inserted = await insertQuarantine(client, rows);
  if (inserted === rows.length || rows.length === 1) {
    if (inserted > 0) for (const { row, index } of rows) written[index]?.quarantined.add(row.messageId);
    return;
  }
  await client.query('ROLLBACK TO SAVEPOINT quarantine');
  for (const entry of rows) {
    if ((await insertQuarantine(client, [entry])) > 0) written[entry.index]?.quarantined.add(entry.row.messageId);
  }
}

async function insertQuarantine(client: pg.PoolClient, unsorted: readonly { row: QuarantineRow; dataKeyId: number }[]): Promise<number> {
  const rows = [...unsorted].sort((a, b) => compare(a.row.messageId, b.row.messageId));
  const { rowCount } = await client.query(
    `INSERT INTO quarantine (message_id, reasons, body_ciphertext, data_key_id, body_bytes, sent_at, receive_count)
     SELECT message_id, reasons, body, data_key_id, body_bytes, timestamptz 'epoch' + sent_ms * interval '1 millisecond', receive_count
     FROM unnest($1::text[], $2::jsonb[], $3::bytea[], $4::int[], $5::int[], $6::bigint[], $7::int[])
          AS q(message_id, reasons, body, data_key_id, body_bytes, sent_ms, receive_count)
     ON CONFLICT DO NOTHING`,
    [
      rows.map((r) => r.row.messageId),
      rows.map((r) => JSON.stringify(r.row.reasons)),
      rows.map((r) => r.row.ciphertext),
      rows.map((r) => r.dataKeyId),
      rows.map((r) => r.row.bodyBytes),
      rows.map((r) => r.row.sentAtMs),
      rows.map((r) => r.row.receiveCount),
    ],
  );
  return rowCount ?? 0;
}

/** Code-unit order, as COLLATE "C" sorts ASCII ids and tokens. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
