import type pg from 'pg';

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export interface Partition {
  name: string;
  /** Inclusive first day (YYYY-MM-DD); undefined for the default partition. */
  from: string | undefined;
  /** Exclusive end day (YYYY-MM-DD). */
  to: string | undefined;
  isDefault: boolean;
}

export const DEFAULT_PARTITION = 'user_logins_default';

/** The partitions of user_logins with their bounds, oldest first, the default partition last. */
export async function listPartitions(db: Queryable): Promise<Partition[]> {
  const { rows } = await db.query<{ name: string; bound: string }>(
    `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
     FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'public.user_logins'::regclass`,
  );
  const partitions = rows.map(({ name, bound }): Partition => {
    const match = /FROM \('(\d{4}-\d{2}-\d{2})'\) TO \('(\d{4}-\d{2}-\d{2})'\)/.exec(bound);
    return { name, from: match?.[1], to: match?.[2], isDefault: bound === 'DEFAULT' };
  });
  return partitions.sort((a, b) => (a.isDefault ? 1 : b.isDefault ? -1 : (a.from ?? '').localeCompare(b.from ?? '')));
}

/** First day of the month `offset` months from the month of `day` (UTC), as YYYY-MM-DD. */
export function monthStart(day: Date, offset = 0): string {
  return new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth() + offset, 1)).toISOString().slice(0, 10);
}

/**
 * Creates the partition of each month from this month to `monthsAhead` months ahead that is
 * missing (moving any of its rows out of the default partition). Returns the names created.
 */
export async function prepareMonths(db: Queryable, today: Date, monthsAhead: number): Promise<string[]> {
  const existing = new Set((await listPartitions(db)).map((p) => p.from));
  const created: string[] = [];
  for (let offset = 0; offset <= monthsAhead; offset += 1) {
    const month = monthStart(today, offset);
    if (existing.has(month)) continue;
    created.push(await prepareMonth(db, month));
  }
  return created;
}

/** One month's partition, created and attached (see user_logins_prepare_month in migration 0007). */
export async function prepareMonth(db: Queryable, month: string): Promise<string> {
  const { rows } = await db.query<{ name: string }>('SELECT user_logins_prepare_month($1::date) AS name', [month]);
  return rows[0]?.name ?? '';
}

/**
 * Rows dated outside the prepared months sit in the default partition: give each of their
 * months a partition of its own (the rows move with it). Returns months and rows moved.
 */
export async function splitDefault(db: Queryable): Promise<{ partitions: string[]; rows: number }> {
  const { rows } = await db.query<{ month: string; rows: string }>(
    `SELECT to_char(date_trunc('month', create_date), 'YYYY-MM-DD') AS month, count(*) AS rows
     FROM ${DEFAULT_PARTITION} GROUP BY 1 ORDER BY 1`,
  );
  const partitions: string[] = [];
  let moved = 0;
  for (const row of rows) {
    partitions.push(await prepareMonth(db, row.month));
    moved += Number(row.rows);
  }
  return { partitions, rows: moved };
}
