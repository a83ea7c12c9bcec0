import type pg from 'pg';
import { withTransaction } from '../../../db/transaction.js';
import type { PreparedBatch, QuarantineRow, VaultRow } from './prepare.js';

/** What one batch's rows did in the database. */
export interface Written {
  stored: number;
  /** Message ids of quarantine rows inserted now (not already there from an earlier delivery). */
  quarantined: Set<string>;
}

/** One transaction for a group of batches: the vault once (merged, sorted), then each batch's rows. */
export function writeBatches(pool: pg.Pool, batches: readonly PreparedBatch[]): Promise<Written[]> {
  return withTransaction(pool, async (client) => {
    await insertVault(client, batches);
    const written = await insertLoginsOf(client, batches);
    await insertQuarantineOf(client, batches, written);
    return written;
  });
}

// Hot path: one INSERT ... SELECT FROM unnest(arrays) per table per batch is one round trip
// and one plan for any number of rows (a VALUES list would need a parameter per value and a
// new statement text for every batch size).
// ON CONFLICT without a target: naming the column (message_id) needs SELECT on it, which the
// least-privilege ingestor role does not have. The only unique key a new row can hit is
// message_id (user_logins, quarantine) or token (pii_vault), so the effect is the same.
async function insertVault(client: pg.PoolClient, batches: readonly PreparedBatch[]): Promise<void> {
  const byToken = new Map<string, { row: VaultRow; dataKeyId: number; tokenKeyVersion: number }>();
  for (const batch of batches) {
    for (const row of batch.vault) {
      if (!byToken.has(row.token)) byToken.set(row.token, { row, dataKeyId: batch.dataKeyId, tokenKeyVersion: batch.tokenKeyVersion });
    }
  }
  if (byToken.size === 0) return;
  // Sorted: every writer (other replicas too) takes the unique-index locks in the same order, so none deadlock.
  const rows = [...byToken.values()].sort((a, b) => compare(a.row.token, b.row.token));
  await client.query(
    `INSERT INTO pii_vault (token, field, ciphertext, data_key_id, token_key_version)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::int[], $5::smallint[])
     ON CONFLICT DO NOTHING`,
    [
      rows.map((r) => r.row.token),
      rows.map((r) => r.row.field),
      rows.map((r) => r.row.ciphertext),
      rows.map((r) => r.dataKeyId),
      rows.map((r) => r.tokenKeyVersion),
    ],
  );
}

/**
 * All batches' rows in one statement. The ingestor role cannot read rows back (no RETURNING),
 * so per-batch counts come from rowCount: when every row was new (the normal case) each batch
 * stored all of its rows; otherwise (a redelivery in the group) the statement is undone to a
 * savepoint and repeated batch by batch to learn which batch held the duplicates.
 */
async function insertLoginsOf(client: pg.PoolClient, batches: readonly PreparedBatch[]): Promise<Written[]> {
  const written: Written[] = batches.map(() => ({ stored: 0, quarantined: new Set<string>() }));
  const total = batches.reduce((sum, batch) => sum + batch.logins.length, 0);
  if (total === 0) return written;
  if (batches.length > 1) await client.query('SAVEPOINT logins');
  const stored = await insertLogins(client, batches);
  if (stored === total || batches.length === 1) {
    batches.forEach((batch, index) => {
      (written[index] as Written).stored = batches.length === 1 ? stored : batch.logins.length;
    });
    return written;
  }
  await client.query('ROLLBACK TO SAVEPOINT logins');
  for (const [index, batch] of batches.entries()) (written[index] as Written).stored = await insertLogins(client, [batch]);
  return written;
}

async function insertLogins(client: pg.PoolClient, batches: readonly PreparedBatch[]): Promise<number> {
  const rows = batches.flatMap((batch) => batch.logins.map((row) => ({ ...row, tokenKeyVersion: batch.tokenKeyVersion })));
  if (rows.length === 0) return 0;
  // Sorted like the vault: concurrent writers take the unique-index locks in one order.
  rows.sort((a, b) => compare(a.messageId, b.messageId));
  const { rowCount } = await client.query(
    `INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version,
                              app_version_major, app_version_minor, app_version_patch, create_date, sent_at, token_key_version)
     SELECT message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version, major, minor, patch,
            (sent_at AT TIME ZONE 'UTC')::date, sent_at, token_key_version
     FROM (
       SELECT u.*, timestamptz 'epoch' + sent_ms * interval '1 millisecond' AS sent_at
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                   $8::int[], $9::int[], $10::int[], $11::bigint[], $12::smallint[])
            AS u(message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version, major, minor, patch, sent_ms,
                 token_key_version)
     ) AS rows
     ON CONFLICT DO NOTHING`,
    [
      rows.map((r) => r.messageId),
      rows.map((r) => r.userId),
      rows.map((r) => r.deviceType),
      rows.map((r) => r.maskedIp),
      rows.map((r) => r.maskedDeviceId),
      rows.map((r) => r.locale),
      rows.map((r) => r.appVersion),
      rows.map((r) => r.major),
      rows.map((r) => r.minor),
      rows.map((r) => r.patch),
      rows.map((r) => r.sentAtMs),
      rows.map((r) => r.tokenKeyVersion),
    ],
  );
  return rowCount ?? 0;
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

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
