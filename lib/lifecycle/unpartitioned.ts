import type pg from 'pg';
import { insertAudit } from '../audit/insert.js';
import { TokenvaultError } from '../errors.js';
import type { MaintenanceMetrics } from './metrics.js';
import { prepareMonth } from './partitions.js';
import { systemEntry } from './system-audit.js';
import { withTransaction } from '../../db/transaction.js';

/** Where migration 0007 left a pre-partitioning user_logins too large to move inside the migration. */
export const UNPARTITIONED_TABLE = 'user_logins_unpartitioned';

export interface MoveResult {
  /** False when there was no unpartitioned table (nothing to do). */
  found: boolean;
  moved: number;
  /** Rows already in the partitioned table (a redelivery stored while the move ran): dropped. */
  duplicates: number;
  /** True once every row moved and the old table is gone. */
  completed: boolean;
}

export interface MoveDeps {
  pool: pg.Pool;
  metrics?: MaintenanceMetrics;
  signal?: AbortSignal;
  onProgress?: (step: string, done: number, total: number) => void;
}

export async function unpartitionedRows(pool: pg.Pool): Promise<number | undefined> {
  const { rows } = await pool.query<{ exists: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS exists`, [`public.${UNPARTITIONED_TABLE}`]);
  if (rows[0]?.exists !== true) return undefined;
  const count = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${UNPARTITIONED_TABLE}`);
  return Number(count.rows[0]?.n ?? 0);
}

/**
 * Moves the rows of the pre-partitioning table into the partitioned user_logins while
 * ingestors keep writing: batches in message_id order, each one transaction that deletes the
 * batch from the old table and inserts it into the new one, so a row is in exactly one of
 * them at any moment and an interruption loses nothing (run again: it continues with what is
 * left). Each month present gets its partition first. The emptied table is dropped.
 */
export async function moveUnpartitioned(deps: MoveDeps, batchSize: number): Promise<MoveResult> {
  const total = await unpartitionedRows(deps.pool);
  if (total === undefined) return { found: false, moved: 0, duplicates: 0, completed: true };

  const { rows: months } = await deps.pool.query<{ month: string }>(
    `SELECT to_char(m, 'YYYY-MM-DD') AS month
     FROM generate_series((SELECT date_trunc('month', min(create_date))::date FROM ${UNPARTITIONED_TABLE}),
                          (SELECT date_trunc('month', max(create_date))::date FROM ${UNPARTITIONED_TABLE}),
                          interval '1 month') AS m`,
  );
  for (const { month } of months) await prepareMonth(deps.pool, month);

  const result: MoveResult = { found: true, moved: 0, duplicates: 0, completed: false };
  let after = '';
  for (;;) {
    deps.onProgress?.('moving rows into partitions', result.moved + result.duplicates, total);
    if (deps.signal?.aborted === true) return result;
    const batch = await withTransaction(deps.pool, async (client) => {
      const { rows } = await client.query<{ message_id: string }>(
        `SELECT message_id FROM ${UNPARTITIONED_TABLE} WHERE message_id > $1 ORDER BY message_id LIMIT $2`,
        [after, batchSize],
      );
      if (rows.length === 0) return undefined;
      const ids = rows.map((row) => row.message_id);
      const { rowCount } = await client.query(
        `WITH moved AS (DELETE FROM ${UNPARTITIONED_TABLE} WHERE message_id = ANY($1::text[]) RETURNING *)
         INSERT INTO user_logins SELECT * FROM moved ON CONFLICT DO NOTHING`,
        [ids],
      );
      return { last: ids[ids.length - 1] ?? after, selected: ids.length, inserted: rowCount ?? 0 };
    });
    if (batch === undefined) break;
    after = batch.last;
    result.moved += batch.inserted;
    result.duplicates += batch.selected - batch.inserted;
    deps.metrics?.rowsMoved.inc({ from: 'unpartitioned' }, batch.inserted);
  }
  deps.onProgress?.('moving rows into partitions', result.moved + result.duplicates, Math.max(total, result.moved + result.duplicates));

  await withTransaction(deps.pool, async (client) => {
    // Nothing may be left behind: an ingestor no longer writes the old table, so empty means done.
    await client.query(`LOCK TABLE ${UNPARTITIONED_TABLE} IN ACCESS EXCLUSIVE MODE`);
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${UNPARTITIONED_TABLE}`);
    if (Number(rows[0]?.n ?? 0) !== 0) throw new TokenvaultError('move_incomplete', `${UNPARTITIONED_TABLE} still holds rows: run again`);
    await client.query(`DROP TABLE ${UNPARTITIONED_TABLE}`);
    await insertAudit(client, [
      systemEntry('partition.migrate', {
        purpose: 'partitioning: user_logins moved to monthly partitions',
        reason: `moved the rows of ${UNPARTITIONED_TABLE} into the partitioned user_logins and dropped it`,
        counts: { rows: result.moved, duplicates: result.duplicates },
      }),
    ]);
  });
  result.completed = true;
  return result;
}
