import type pg from 'pg';
import type { Logger } from 'pino';
import { isTransientDbError, type Database } from '../../db/client.js';
import type { QuarantineReason } from '../../db/schema.js';
import { sealAll } from '../../lib/crypto/aead.js';
import type { PiiField } from '../../lib/crypto/normalize.js';
import type { Tokenizer } from '../../lib/crypto/tokens.js';
import { quarantineAad, vaultAad } from '../../lib/crypto/vault-context.js';
import { isTransient, TokenvaultError } from '../../lib/errors.js';
import type { DataKeyRing } from '../../lib/keys/data-key-ring.js';
import type { KnownTokens } from './known-tokens.js';
import { parseLoginEvent, type InboundMessage, type UnknownFieldPolicy } from './message.js';
import { BoundedNames, countNames } from './unknown-fields.js';

export interface SinkDeps {
  database: Database;
  dataKeys: DataKeyRing;
  /** The tokenizer of the active token key; read once per batch. */
  tokenizer: () => Tokenizer;
  knownTokens: KnownTokens;
  logger?: Logger;
  /**
   * Group-commit transactions in flight at once (default 2). One keeps the database work on a
   * single backend (one core); two let PostgreSQL use a second core while the first commits.
   * Every writer inserts in the same order (table by table, rows sorted by key), so two of our
   * own transactions can wait on each other's new rows but not deadlock.
   */
  writers?: number;
  /** What to do with fields a login event does not define (default drop). */
  unknownFields?: UnknownFieldPolicy;
}

export interface SinkResult {
  /** Distinct messages in the batch (the same MessageId twice counts once). */
  received: number;
  stored: number;
  /** Messages already stored or quarantined earlier (redelivery). */
  duplicates: number;
  quarantined: number;
  /** Quarantined messages by their first reason code (each message counts once). */
  reasons: Record<string, number>;
  /** New vault values this batch encrypted and wrote (ON CONFLICT skips any another replica wrote first). */
  vaultWritten: number;
  /** Vault writes skipped because the token was known to be stored already (or repeated in the batch). */
  vaultKnown: number;
  /** True when a non-transient database error made the batch go message by message. */
  splitAfterError: boolean;
  /**
   * Unknown fields dropped from stored messages: name → messages (names only, at most
   * MAX_FIELD_NAMES, then OTHER_FIELDS). Redelivered messages count again.
   */
  droppedFields: Record<string, number>;
}

export interface Sink {
  /**
   * Validates, tokenises, encrypts and stores a batch in ONE transaction. Resolves once
   * everything is committed (the caller may then delete the messages); rejects with a
   * transient TokenvaultError when nothing may be deleted (database or KMS unreachable).
   */
  write(messages: readonly InboundMessage[]): Promise<SinkResult>;
}

/** A transient storage failure: the batch stays on the queue and comes back. */
export class StorageUnavailableError extends TokenvaultError {
  constructor(cause: unknown) {
    super('storage_unavailable', `database or key provider unavailable: ${describe(cause)}`, { cause, transient: true });
  }
}

interface LoginRow {
  messageId: string;
  userId: string;
  deviceType: string;
  maskedIp: string;
  maskedDeviceId: string;
  locale: string | null;
  appVersion: string;
  major: number | null;
  minor: number | null;
  patch: number | null;
  sentAtMs: number;
}

interface VaultRow {
  token: string;
  field: PiiField;
  ciphertext: Buffer;
}

interface QuarantineRow {
  messageId: string;
  reasons: QuarantineReason[];
  ciphertext: Buffer;
  bodyBytes: number;
  sentAtMs: number;
  receiveCount: number | null;
}

interface Written {
  stored: number;
  /** Message ids of quarantine rows inserted now (not already there from an earlier delivery). */
  quarantined: Set<string>;
}

interface PreparedBatch {
  /** Field names dropped, per valid message. */
  droppedFields: string[][];
  logins: LoginRow[];
  vault: VaultRow[];
  quarantine: QuarantineRow[];
  dataKeyId: number;
  tokenKeyVersion: number;
}

/** Upper bound on messages per group-commit transaction. */
const MAX_GROUP_MESSAGES = 5000;
export const DEFAULT_WRITERS = 2;

export function createSink(deps: SinkDeps): Sink {
  const { database, dataKeys, knownTokens } = deps;
  const maxWriters = Math.max(1, Math.floor(deps.writers ?? DEFAULT_WRITERS));

  /** Validation, tokenisation and encryption: everything before the database. */
  async function prepare(messages: readonly InboundMessage[], forced?: Map<string, QuarantineReason[]>): Promise<PreparedBatch> {
    const tokenizer = deps.tokenizer();
    const logins: LoginRow[] = [];
    const pending: { token: string; field: PiiField; value: string }[] = [];
    const pendingTokens = new Set<string>();
    const rejected: { message: InboundMessage; reasons: QuarantineReason[] }[] = [];
    const droppedFields: string[][] = [];
    const addVault = (field: PiiField, token: string, value: string): void => {
      if (pendingTokens.has(token) || knownTokens.has(token)) return;
      pendingTokens.add(token);
      pending.push({ token, field, value });
    };

    for (const message of messages) {
      const forcedReasons = forced?.get(message.messageId);
      if (forcedReasons !== undefined) {
        rejected.push({ message, reasons: forcedReasons });
        continue;
      }
      const parsed = parseLoginEvent(message.body, { unknownFields: deps.unknownFields ?? 'drop' });
      if (!parsed.ok) {
        rejected.push({ message, reasons: parsed.reasons });
        continue;
      }
      if (parsed.droppedFields.length > 0) droppedFields.push(parsed.droppedFields);
      const event = parsed.event;
      const maskedIp = tokenizer.tokenizeCanonical('ip', event.ip);
      const maskedDeviceId = tokenizer.tokenizeCanonical('device_id', event.deviceId);
      addVault('ip', maskedIp, event.ip);
      addVault('device_id', maskedDeviceId, event.deviceId);
      logins.push({
        messageId: message.messageId,
        userId: event.userId,
        deviceType: event.deviceType,
        maskedIp,
        maskedDeviceId,
        locale: event.locale,
        appVersion: event.appVersion,
        major: event.appVersionParts?.major ?? null,
        minor: event.appVersionParts?.minor ?? null,
        patch: event.appVersionParts?.patch ?? null,
        sentAtMs: message.sentAt.getTime(),
      });
    }

    const sealCount = pending.length + rejected.length;
    // One reservation per batch: encryption below is synchronous, no await per value.
    const dataKey = sealCount > 0 ? await dataKeys.acquire(sealCount) : undefined;
    const key = dataKey?.key ?? Buffer.alloc(0);
    const vaultSealed = sealAll(
      key,
      pending.map(({ token, value }) => ({ plaintext: Buffer.from(value, 'utf8'), aad: vaultAad(token) })),
    );
    const vault = pending.map(({ token, field }, index) => ({ token, field, ciphertext: vaultSealed[index] ?? Buffer.alloc(0) }));
    const bodies = rejected.map(({ message }) => Buffer.from(message.body, 'utf8'));
    const bodiesSealed = sealAll(
      key,
      rejected.map(({ message }, index) => ({ plaintext: bodies[index] ?? Buffer.alloc(0), aad: quarantineAad(message.messageId) })),
    );
    const quarantine = rejected.map(({ message, reasons }, index) => ({
      messageId: message.messageId,
      reasons,
      ciphertext: bodiesSealed[index] ?? Buffer.alloc(0),
      bodyBytes: bodies[index]?.length ?? 0,
      sentAtMs: message.sentAt.getTime(),
      receiveCount: message.receiveCount ?? null,
    }));
    return { droppedFields, logins, vault, quarantine, dataKeyId: dataKey?.id ?? 0, tokenKeyVersion: tokenizer.keyVersion };
  }

  /** One transaction for a group of batches: the vault once (merged, sorted), then each batch's rows. */
  async function commitGroup(batches: readonly PreparedBatch[]): Promise<Written[]> {
    const client = await database.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await insertVault(client, batches);
      const written = await insertLoginsOf(client, batches);
      await insertQuarantineOf(client, batches, written);
      await client.query('COMMIT');
      return written;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: unknown) => {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      });
      throw error;
    } finally {
      // A connection that could not even roll back is discarded, not reused.
      client.release(broken);
    }
  }

  /**
   * Group commit: batches that arrive while every writer is busy wait and then share the next
   * transaction (one fsync for many batches). At most `maxWriters` transactions run at once;
   * since all of them take row locks in one global order (vault sorted by token, then logins
   * and quarantine sorted by message id), concurrent ones may wait for each other's new vault
   * rows but cannot deadlock (a rare redelivery split could; 40P01 is transient and retried).
   */
  const queue: { batch: PreparedBatch; resolve: (written: Written) => void; reject: (error: unknown) => void }[] = [];
  let writing = 0;

  function commit(batch: PreparedBatch): Promise<Written> {
    return new Promise((resolve, reject) => {
      queue.push({ batch, resolve, reject });
      if (writing < maxWriters) void drain();
    });
  }

  async function drain(): Promise<void> {
    writing += 1;
    try {
      while (queue.length > 0) {
        const group = takeGroup();
        try {
          const written = await commitGroup(group.map((entry) => entry.batch));
          group.forEach((entry, index) => entry.resolve(written[index] ?? { stored: 0, quarantined: new Set() }));
        } catch (error) {
          if (group.length === 1 || isTransientDbError(error) || isTransient(error)) {
            for (const entry of group) entry.reject(error);
            continue;
          }
          // One batch of the group holds something the database refuses: commit each alone,
          // so only the offending batch goes on to the message-by-message path.
          for (const entry of group) {
            await commitGroup([entry.batch]).then(
              (written) => entry.resolve(written[0] ?? { stored: 0, quarantined: new Set() }),
              (batchError: unknown) => entry.reject(batchError),
            );
          }
        }
      }
    } finally {
      writing -= 1;
    }
  }

  function takeGroup(): typeof queue {
    let messages = 0;
    let count = 0;
    while (count < queue.length && (count === 0 || messages + (queue[count]?.batch.logins.length ?? 0) <= MAX_GROUP_MESSAGES)) {
      messages += (queue[count]?.batch.logins.length ?? 0) + (queue[count]?.batch.quarantine.length ?? 0);
      count += 1;
    }
    return queue.splice(0, count);
  }

  function remember(batch: PreparedBatch): void {
    for (const row of batch.vault) knownTokens.add(row.token);
  }

  function tally(result: SinkResult, batch: PreparedBatch, written: Written, names: BoundedNames): void {
    for (const fields of batch.droppedFields) countNames(result.droppedFields, fields, names);
    result.stored += written.stored;
    result.quarantined += written.quarantined.size;
    result.duplicates += batch.logins.length - written.stored + (batch.quarantine.length - written.quarantined.size);
    result.vaultWritten += batch.vault.length;
    for (const row of batch.quarantine) {
      const code = row.reasons[0]?.code;
      if (code !== undefined && written.quarantined.has(row.messageId)) result.reasons[code] = (result.reasons[code] ?? 0) + 1;
    }
  }

  async function write(messages: readonly InboundMessage[]): Promise<SinkResult> {
    const distinct = dedupeById(messages);
    const result: SinkResult = {
      received: distinct.length,
      stored: 0,
      duplicates: 0,
      quarantined: 0,
      reasons: {},
      vaultWritten: 0,
      vaultKnown: 0,
      splitAfterError: false,
      droppedFields: {},
    };
    const names = new BoundedNames();
    if (distinct.length === 0) return result;

    const batch = await guard(() => prepare(distinct));
    // Two tokens per login; those without a vault row were cached or repeated within the batch.
    result.vaultKnown = batch.logins.length * 2 - batch.vault.length;
    try {
      tally(result, batch, await commit(batch), names);
      remember(batch);
      return result;
    } catch (error) {
      if (isTransientDbError(error) || isTransient(error)) throw new StorageUnavailableError(error);
      deps.logger?.warn(
        { sqlstate: sqlState(error), messages: distinct.length },
        'batch rejected by the database; retrying message by message',
      );
    }

    // A constraint the validator missed: find the offending message(s) and quarantine only them.
    result.splitAfterError = true;
    for (const message of distinct) {
      const single = await guard(() => prepare([message]));
      try {
        tally(result, single, await commit(single), names);
        remember(single);
        continue;
      } catch (error) {
        if (isTransientDbError(error) || isTransient(error)) throw new StorageUnavailableError(error);
        const code = sqlState(error);
        deps.logger?.warn({ messageId: message.messageId, sqlstate: code }, 'message rejected by the database; quarantining it');
        const reason: QuarantineReason = code === undefined ? { code: 'storage_rejected' } : { code: 'storage_rejected', path: `sqlstate:${code}` };
        const rejected = await guard(() => prepare([message], new Map([[message.messageId, [reason]]])));
        try {
          tally(result, rejected, await commit(rejected), names);
        } catch (quarantineError) {
          // Not even the quarantine row fits: leave the message on the queue (it ends in the DLQ).
          throw new TokenvaultError('quarantine_failed', `could not quarantine message ${message.messageId}: ${describe(quarantineError)}`, {
            cause: quarantineError,
            transient: isTransientDbError(quarantineError),
          });
        }
      }
    }
    return result;
  }

  return { write };
}

/** Key-provider or key-store failures while preparing become StorageUnavailableError when transient. */
async function guard<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (isTransientDbError(error) || isTransient(error)) throw new StorageUnavailableError(error);
    throw error;
  }
}

/** The emulator (and, rarely, SQS) may hand the same message twice in one receive. */
function dedupeById(messages: readonly InboundMessage[]): InboundMessage[] {
  const seen = new Set<string>();
  const distinct: InboundMessage[] = [];
  for (const message of messages) {
    if (seen.has(message.messageId)) continue;
    seen.add(message.messageId);
    distinct.push(message);
  }
  return distinct;
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

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Error text for logs and error messages. A PostgreSQL error is reduced to its SQLSTATE:
 * its message or detail may quote a value. Connection errors carry no row data.
 */
function describe(error: unknown): string {
  const code = sqlState(error);
  if (code !== undefined) return `PostgreSQL error SQLSTATE ${code}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
