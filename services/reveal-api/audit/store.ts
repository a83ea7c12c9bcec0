import type pg from 'pg';
import { checkpointBodySchema, checkpointLine, type CheckpointBody, type SignedCheckpoint } from '../../../lib/audit/checkpoint.js';
import { rowLine } from '../../../lib/audit/export-format.js';
import type { AuditRow } from '../../../lib/audit/chain.js';
import { ROW_COLUMNS, toRow, type RawRow } from '../../../lib/audit/reader.js';

type Queryable = Pick<pg.Pool, 'query'>;

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
  body: string;
  signature: Buffer;
}

/** Checkpoints stored in audit_checkpoints with idx > afterIndex, in index order. */
export async function* readStoredCheckpoints(db: Queryable, afterIndex = 0, pageSize = 1000): AsyncGenerator<SignedCheckpoint> {
  let after = afterIndex;
  for (;;) {
    const page = await db.query<RawCheckpoint>('SELECT idx, body, signature FROM audit_checkpoints WHERE idx > $1 ORDER BY idx LIMIT $2', [after, pageSize]);
    for (const raw of page.rows) yield storedCheckpoint(raw);
    const last = page.rows.at(-1);
    if (last === undefined || page.rows.length < pageSize) return;
    after = Number(last.idx);
  }
}

export async function latestStoredCheckpoint(db: Queryable): Promise<SignedCheckpoint | undefined> {
  const { rows } = await db.query<RawCheckpoint>('SELECT idx, body, signature FROM audit_checkpoints ORDER BY idx DESC LIMIT 1');
  return rows[0] === undefined ? undefined : storedCheckpoint(rows[0]);
}

/**
 * A stored body that is not valid JSON of the format is returned as-is with what could be
 * read, so the verifier reports the bad signature (tampering) instead of crashing.
 */
function storedCheckpoint(raw: RawCheckpoint): SignedCheckpoint {
  let body: CheckpointBody;
  try {
    body = checkpointBodySchema.parse(JSON.parse(raw.body)) as CheckpointBody;
  } catch {
    body = { format: 'unreadable' as CheckpointBody['format'], index: Number(raw.idx) } as CheckpointBody;
  }
  return { body, signature: raw.signature };
}

/**
 * The export (docs/audit-format.md §3): NDJSON rows after afterSeq, then every checkpoint.
 * One chunk per page of rows, pulled as the consumer reads, so memory stays flat.
 */
export async function* exportLines(db: Queryable, afterSeq = 0): AsyncGenerator<string> {
  for await (const page of readAuditRows(db, { afterSeq, pageSize: 5000 })) {
    yield `${page.map(rowLine).join('\n')}\n`;
  }
  for await (const checkpoint of readStoredCheckpoints(db)) yield `${checkpointLine(checkpoint)}\n`;
}
