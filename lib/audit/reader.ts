import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { AUDIT_COLUMNS, type AuditRowJson } from './audit-row.js';
import type { AuditRow } from './chain.js';
import { checkpointBodySchema, type CheckpointBody } from './checkpoint.js';
import { recordLine, type CheckpointRecord } from './checkpoint-record.js';
import { exportStartLine, rowLine } from './export-format.js';

type Queryable = Pick<pg.Pool, 'query'>;

/** occurred_at rendered exactly as it was hashed (lib/audit/audit-row.ts). */
export const OCCURRED_AT_AS_HASHED = `to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS occurred_at`;

/** Columns as stored (AUDIT_COLUMNS), with occurred_at rendered exactly as it was hashed. */
export const ROW_COLUMNS = AUDIT_COLUMNS.map((column) => (column === 'occurred_at' ? OCCURRED_AT_AS_HASHED : column)).join(', ');

/** A row as pg returns ROW_COLUMNS: the row's JSON form, except bigint as text and bytea as Buffer. */
export type RawRow = Omit<AuditRowJson, 'seq' | 'prev_hash' | 'hash'> & { seq: string; prev_hash: Buffer | null; hash: Buffer };

export function toRow(raw: RawRow): AuditRow {
  return {
    seq: Number(raw.seq),
    occurredAt: raw.occurred_at,
    action: raw.action,
    actor: raw.actor,
    roles: raw.roles,
    clientAddress: raw.client_address,
    requestId: raw.request_id,
    purpose: raw.purpose,
    ticket: raw.ticket,
    tokens: raw.tokens,
    fieldCounts: raw.field_counts,
    outcome: raw.outcome,
    reason: raw.reason,
    prevHash: raw.prev_hash,
    hash: raw.hash,
  };
}

export interface AuditQuery {
  actor?: string | undefined;
  token?: string | undefined;
  outcome?: string | undefined;
  action?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  /** Only rows with a smaller seq (the previous page's last seq). */
  beforeSeq?: number | undefined;
  limit: number;
}

export interface AuditPage {
  entries: AuditRow[];
  /** seq of the last entry when more may follow. */
  nextBeforeSeq: number | undefined;
}

/** Newest first, keyset-paginated on seq. */
export async function queryAuditLog(db: Queryable, query: AuditQuery): Promise<AuditPage> {
  const conditions: string[] = [];
  const values: unknown[] = [];
  const add = (sql: (placeholder: string) => string, value: unknown) => {
    values.push(value);
    conditions.push(sql(`$${values.length}`));
  };
  if (query.actor !== undefined) add((p) => `actor = ${p}`, query.actor);
  // The GIN index holds hashes of the tokens (audit_token_keys); `tokens @>` rechecks each candidate.
  if (query.token !== undefined) {
    add((p) => `audit_token_keys(tokens) @> audit_token_keys(ARRAY[${p}]::text[]) AND tokens @> ARRAY[${p}]::text[]`, query.token);
  }
  if (query.outcome !== undefined) add((p) => `outcome = ${p}`, query.outcome);
  if (query.action !== undefined) add((p) => `action = ${p}`, query.action);
  if (query.from !== undefined) add((p) => `occurred_at >= ${p}::timestamptz`, query.from);
  if (query.to !== undefined) add((p) => `occurred_at < ${p}::timestamptz`, query.to);
  if (query.beforeSeq !== undefined) add((p) => `seq < ${p}`, query.beforeSeq);
  values.push(query.limit + 1);
  const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
  const result = await db.query<RawRow>(`SELECT ${ROW_COLUMNS} FROM audit_log ${where} ORDER BY seq DESC LIMIT $${values.length}`, values);
  const entries = result.rows.slice(0, query.limit).map(toRow);
  const more = result.rows.length > query.limit;
  return { entries, nextBeforeSeq: more ? entries.at(-1)?.seq : undefined };
}

/** Rows with seq > afterSeq (and ≤ toSeq), oldest first, a page at a time (flat memory). */
export async function* readAuditRows(db: Queryable, options: { afterSeq?: number; toSeq?: number; pageSize?: number } = {}): AsyncGenerator<AuditRow[]> {
  const pageSize = options.pageSize ?? 2000;
  let after = options.afterSeq ?? 0;
  for (;;) {
    const page = await db.query<RawRow>({
      name: 'audit-rows-page',
      text: `SELECT ${ROW_COLUMNS} FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`,
      values: [after, options.toSeq ?? Number.MAX_SAFE_INTEGER, pageSize],
    });
    if (page.rows.length > 0) yield page.rows.map(toRow);
    const last = page.rows.at(-1);
    if (last === undefined || page.rows.length < pageSize) return;
    after = Number(last.seq);
  }
}

interface RawCheckpoint {
  idx: string;
  body: string | null;
  signature: Buffer | null;
  note: string | null;
  signed_at: string | null;
  proof_from_size: string | null;
  consistency_proof: Buffer[] | null;
}

const CHECKPOINT_COLUMNS = 'idx, body, signature, note, signed_at, proof_from_size, consistency_proof';

/**
 * Checkpoint records stored in audit_checkpoints with idx > afterIndex, in index order (v1 JSON
 * and signed notes); with `recordedBefore`, only those recorded before that instant (database clock).
 */
export async function* readStoredCheckpoints(db: Queryable, afterIndex = 0, pageSize = 1000, recordedBefore?: Date): AsyncGenerator<CheckpointRecord> {
  let after = afterIndex;
  for (;;) {
    const page = await db.query<RawCheckpoint>(
      `SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE idx > $1 AND ($3::timestamptz IS NULL OR recorded_at < $3) ORDER BY idx LIMIT $2`,
      [after, pageSize, recordedBefore ?? null],
    );
    for (const raw of page.rows) yield storedCheckpoint(raw);
    const last = page.rows.at(-1);
    if (last === undefined || page.rows.length < pageSize) return;
    after = Number(last.idx);
  }
}

/** Up to `limit` stored records after `afterIndex`, in index order (the publisher's catch-up). */
export async function storedCheckpointsAfter(db: Queryable, afterIndex: number, limit: number): Promise<CheckpointRecord[]> {
  const { rows } = await db.query<RawCheckpoint>(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE idx > $1 ORDER BY idx LIMIT $2`, [afterIndex, limit]);
  return rows.map(storedCheckpoint);
}

export async function latestStoredCheckpoint(db: Queryable): Promise<CheckpointRecord | undefined> {
  const { rows } = await db.query<RawCheckpoint>(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY idx DESC LIMIT 1`);
  return rows[0] === undefined ? undefined : storedCheckpoint(rows[0]);
}

/**
 * A stored v1 body that is not valid JSON of the format is returned as-is with what could be
 * read, so the verifier reports the bad signature (tampering) instead of crashing. A note is
 * returned verbatim: the verifier parses and verifies it.
 */
function storedCheckpoint(raw: RawCheckpoint): CheckpointRecord {
  const index = Number(raw.idx);
  if (raw.note !== null) {
    return {
      kind: 'note',
      index,
      time: raw.signed_at ?? '',
      note: raw.note,
      ...(raw.proof_from_size === null || raw.consistency_proof === null ? {} : { consistency: { fromSize: Number(raw.proof_from_size), proof: raw.consistency_proof } }),
    };
  }
  let body: CheckpointBody;
  try {
    body = checkpointBodySchema.parse(JSON.parse(raw.body ?? '')) as CheckpointBody;
  } catch {
    body = { format: 'unreadable' as CheckpointBody['format'], index } as CheckpointBody;
  }
  return { kind: 'json', index, checkpoint: { body, signature: raw.signature ?? Buffer.alloc(0) } };
}

export interface ExportOptions {
  /** Rows per query (and per chunk yielded). */
  pageSize?: number;
  /** At most this many rows a second on average (0 or undefined: as fast as the reader reads). */
  rowsPerSecond?: number;
  /** The clock of the export_start line (tests). */
  now?: () => number;
}

/**
 * The export (docs/audit-format.md §6): its start line, NDJSON rows after afterSeq, then the
 * checkpoint records that existed when it started. One chunk per page of rows, pulled as the
 * consumer reads, so memory stays flat. With `rowsPerSecond`, pages are spaced out so the
 * export's share of the database (and of the machine) stays bounded however fast the reader is.
 */
export async function* exportLines(db: Queryable, afterSeq = 0, options: ExportOptions = {}): AsyncGenerator<string> {
  const pageSize = options.pageSize ?? 5000;
  const rate = options.rowsPerSecond ?? 0;
  // Taken before the first row is read: every row committed before this instant is in the export,
  // and so is every row a checkpoint stored before it covers. A checkpoint signed while the rows
  // stream could cover rows the export does not have: it is left out (it is newer than the export).
  // The checkpointer records a note with the database's clock_timestamp() just before it commits,
  // after reading the tree head: one recorded before this instant covers only rows committed before it.
  const startedAt = new Date(options.now?.() ?? Date.now()).toISOString();
  const { rows: clock } = await db.query<{ now: Date }>('SELECT clock_timestamp() AS now');
  const cutoff = clock[0]!.now;
  yield `${exportStartLine({ startedAt, afterSeq })}\n`;
  const started = performance.now();
  let rows = 0;
  for await (const page of readAuditRows(db, { afterSeq, pageSize })) {
    yield `${page.map(rowLine).join('\n')}\n`;
    rows += page.length;
    if (rate > 0) {
      const due = started + (rows / rate) * 1000 - performance.now();
      if (due > 0) await sleep(due);
    }
  }
  for await (const record of readStoredCheckpoints(db, 0, 1000, cutoff)) yield `${recordLine(record)}\n`;
}

/** The actions that record someone reading the log (each page view of an auditor writes one). */
export const AUDIT_READ_ACTIONS = ['audit_read', 'audit_verify', 'audit_export'] as const;

/** How many rows with seq in [fromSeq, toSeq] are `actor`'s own reads of the log (AUDIT_READ_ACTIONS). */
export async function countReadsBy(db: Queryable, actor: string, fromSeq: number, toSeq: number): Promise<number> {
  const { rows } = await db.query<{ reads: string }>(
    'SELECT count(*) AS reads FROM audit_log WHERE seq BETWEEN $1 AND $2 AND actor = $3 AND action = ANY($4::text[])',
    [fromSeq, toSeq, actor, AUDIT_READ_ACTIONS],
  );
  return Number(rows[0]?.reads ?? 0);
}
