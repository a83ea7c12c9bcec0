import type pg from 'pg';
import { insertAudit } from '../audit/insert.js';
import { TokenvaultError } from '../errors.js';
import type { MaintenanceMetrics } from './metrics.js';
import { listPartitions } from './partitions.js';
import { systemEntry } from './system-audit.js';
import { withTransaction } from '../../db/transaction.js';

export interface RetentionSettings {
  /** Unset: login rows are kept forever. */
  loginRetentionDays: number | undefined;
  /** Unset: quarantined messages are kept forever. */
  quarantineRetentionDays: number | undefined;
  batchSize: number;
  today: Date;
}

export interface ExpiredPartition {
  name: string;
  from: string;
  to: string;
  rows: number;
}

export interface RetentionPlan {
  /** Login rows dated before this day (UTC) are past retention; whole months go. */
  loginCutoff: string | undefined;
  partitions: ExpiredPartition[];
  /** Vault values that would be shredded: referenced only by rows of the expired partitions. */
  valuesToShred: { ip: number; device_id: number };
  quarantineCutoff: string | undefined;
  quarantineRows: number;
  /** Tokens of partitions dropped by an earlier, interrupted run, still to be checked. */
  pendingCandidates: number;
}

export interface RetentionResult {
  partitionsDropped: ExpiredPartition[];
  loginRowsRemoved: number;
  quarantineRowsRemoved: number;
  /** Candidate tokens checked against the remaining rows. */
  valuesChecked: number;
  shredded: { ip: number; device_id: number };
  /** Candidates another remaining row still references (a newer login from the same IP or device). */
  valuesKept: number;
}

export interface RetentionDeps {
  pool: pg.Pool;
  metrics?: MaintenanceMetrics;
  signal?: AbortSignal;
  onProgress?: (step: string, done: number, total: number) => void;
}

const LOCK_RETRIES = 3;

function cutoffDay(today: Date, days: number | undefined): string | undefined {
  if (days === undefined) return undefined;
  const day = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - days));
  return day.toISOString().slice(0, 10);
}

/** Whole month partitions whose every day is before the cutoff (the default partition never: maintenance splits it first). */
async function expiredPartitions(pool: pg.Pool, cutoff: string | undefined): Promise<ExpiredPartition[]> {
  if (cutoff === undefined) return [];
  const expired = (await listPartitions(pool)).filter((p) => p.to !== undefined && p.from !== undefined && p.to <= cutoff);
  const result: ExpiredPartition[] = [];
  for (const p of expired) {
    const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteIdent(p.name)}`);
    result.push({ name: p.name, from: p.from ?? '', to: p.to ?? '', rows: Number(rows[0]?.n ?? 0) });
  }
  return result;
}

/** What retention would remove now, changing nothing (the dry run). */
export async function planRetention(pool: pg.Pool, settings: RetentionSettings): Promise<RetentionPlan> {
  const loginCutoff = cutoffDay(settings.today, settings.loginRetentionDays);
  const partitions = await expiredPartitions(pool, loginCutoff);
  const valuesToShred = { ip: 0, device_id: 0 };
  if (partitions.length > 0) {
    const boundary = partitions.reduce((max, p) => (p.to > max ? p.to : max), '');
    const expired = partitions.map((p) => `SELECT masked_ip AS t FROM ${quoteIdent(p.name)} UNION SELECT masked_device_id FROM ${quoteIdent(p.name)}`).join(' UNION ');
    const { rows } = await pool.query<{ field: string; n: string }>(
      `SELECT v.field, count(*) AS n
       FROM (${expired}) AS c JOIN pii_vault AS v ON v.token = c.t
       WHERE NOT EXISTS (SELECT 1 FROM user_logins AS u WHERE u.masked_ip = c.t AND u.create_date >= $1::date)
         AND NOT EXISTS (SELECT 1 FROM user_logins AS u WHERE u.masked_device_id = c.t AND u.create_date >= $1::date)
       GROUP BY v.field`,
      [boundary],
    );
    for (const row of rows) if (row.field === 'ip' || row.field === 'device_id') valuesToShred[row.field] = Number(row.n);
  }
  const quarantineCutoff = cutoffDay(settings.today, settings.quarantineRetentionDays);
  const quarantineRows =
    quarantineCutoff === undefined
      ? 0
      : Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM quarantine WHERE received_at < $1::date', [quarantineCutoff])).rows[0]?.n ?? 0);
  const pendingCandidates = Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM retention_shred_candidates')).rows[0]?.n ?? 0);
  return { loginCutoff, partitions, valuesToShred, quarantineCutoff, quarantineRows, pendingCandidates };
}

/**
 * Applies retention: drops each expired partition (its tokens become shredding candidates in
 * the same transaction), deletes old quarantine rows in batches, then shreds in batches every
 * candidate vault value no remaining row references. Each step commits with its audit row.
 * Interrupted, it resumes on the next run (candidates are persisted).
 */
export async function applyRetention(deps: RetentionDeps, settings: RetentionSettings): Promise<RetentionResult> {
  const loginCutoff = cutoffDay(settings.today, settings.loginRetentionDays);
  const result: RetentionResult = { partitionsDropped: [], loginRowsRemoved: 0, quarantineRowsRemoved: 0, valuesChecked: 0, shredded: { ip: 0, device_id: 0 }, valuesKept: 0 };
  const expired = await expiredPartitions(deps.pool, loginCutoff);
  for (const [index, partition] of expired.entries()) {
    throwIfAborted(deps.signal);
    deps.onProgress?.('dropping expired partitions', index, expired.length);
    const dropped = await withLockRetries(() => dropPartition(deps, partition, settings.loginRetentionDays ?? 0, loginCutoff ?? ''));
    result.partitionsDropped.push(dropped);
    result.loginRowsRemoved += dropped.rows;
    deps.metrics?.partitionsDropped.inc();
    deps.metrics?.rowsRemoved.inc({ table: 'user_logins' }, dropped.rows);
  }
  if (expired.length > 0) deps.onProgress?.('dropping expired partitions', expired.length, expired.length);

  const quarantineCutoff = cutoffDay(settings.today, settings.quarantineRetentionDays);
  if (quarantineCutoff !== undefined) result.quarantineRowsRemoved = await expireQuarantine(deps, quarantineCutoff, settings);

  await shredCandidates(deps, settings.batchSize, result);
  return result;
}

async function dropPartition(deps: RetentionDeps, partition: ExpiredPartition, days: number, cutoff: string): Promise<ExpiredPartition & { candidates: number }> {
  return withTransaction(deps.pool, async (client) => {
    await client.query("SET LOCAL lock_timeout = '5s'");
    const table = quoteIdent(partition.name);
    // Only inserts into this (expired) month wait; the parent is locked by the DROP, at the end.
    await client.query(`LOCK TABLE ${table} IN SHARE MODE`);
    const candidates = await client.query(
      `INSERT INTO retention_shred_candidates (token)
       SELECT masked_ip FROM ${table} UNION SELECT masked_device_id FROM ${table}
       ON CONFLICT DO NOTHING`,
    );
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
    const count = Number(rows[0]?.n ?? 0);
    await client.query(`DROP TABLE ${table}`);
    await insertAudit(client, [
      systemEntry('retention.drop_partition', {
        purpose: `retention: login rows are kept ${days} days (LOGIN_RETENTION_DAYS)`,
        reason: `dropped partition ${partition.name} [${partition.from}, ${partition.to}): every row dated before ${cutoff}`,
        counts: { rows: count, shred_candidates: candidates.rowCount ?? 0 },
      }),
    ]);
    return { ...partition, rows: count, candidates: candidates.rowCount ?? 0 };
  });
}

async function expireQuarantine(deps: RetentionDeps, cutoff: string, settings: RetentionSettings): Promise<number> {
  const total = Number((await deps.pool.query<{ n: string }>('SELECT count(*) AS n FROM quarantine WHERE received_at < $1::date', [cutoff])).rows[0]?.n ?? 0);
  let removed = 0;
  while (removed < total) {
    throwIfAborted(deps.signal);
    deps.onProgress?.('expiring quarantine', removed, total);
    const deleted = await withTransaction(deps.pool, async (client) => {
      const { rowCount } = await client.query(
        `DELETE FROM quarantine WHERE id IN (SELECT id FROM quarantine WHERE received_at < $1::date ORDER BY id LIMIT $2)`,
        [cutoff, settings.batchSize],
      );
      const n = rowCount ?? 0;
      if (n > 0) {
        await insertAudit(client, [
          systemEntry('retention.quarantine', {
            purpose: `retention: quarantined messages are kept ${settings.quarantineRetentionDays ?? 0} days (QUARANTINE_RETENTION_DAYS)`,
            reason: `deleted quarantined messages received before ${cutoff}`,
            counts: { rows: n },
          }),
        ]);
      }
      return n;
    });
    if (deleted === 0) break;
    removed += deleted;
    deps.metrics?.rowsRemoved.inc({ table: 'quarantine' }, deleted);
  }
  if (total > 0) deps.onProgress?.('expiring quarantine', removed, total);
  return removed;
}

async function shredCandidates(deps: RetentionDeps, batchSize: number, result: RetentionResult): Promise<void> {
  const total = Number((await deps.pool.query<{ n: string }>('SELECT count(*) AS n FROM retention_shred_candidates')).rows[0]?.n ?? 0);
  let done = 0;
  for (;;) {
    throwIfAborted(deps.signal);
    if (total > 0) deps.onProgress?.('shredding unreferenced vault values', Math.min(done, total), total);
    const batch = await withLockRetries(() =>
      withTransaction(deps.pool, async (client) => {
        const { rows: picked } = await client.query<{ token: string }>('SELECT token FROM retention_shred_candidates ORDER BY token LIMIT $1', [batchSize]);
        const tokens = picked.map((row) => row.token);
        if (tokens.length === 0) return undefined;
        await client.query("SET LOCAL lock_timeout = '5s'");
        const { rows: shredded } = await client.query<{ token: string; field: string }>('SELECT token, field FROM shred_unreferenced_vault_values($1::text[])', [tokens]);
        const { rows: kept } = await client.query<{ n: string }>('SELECT count(*) AS n FROM pii_vault WHERE token = ANY($1::text[])', [tokens]);
        await client.query('DELETE FROM retention_shred_candidates WHERE token = ANY($1::text[])', [tokens]);
        const counts = { checked: tokens.length, ip: 0, device_id: 0, kept: Number(kept[0]?.n ?? 0) };
        for (const row of shredded) if (row.field === 'ip' || row.field === 'device_id') counts[row.field] += 1;
        await insertAudit(client, [
          systemEntry('retention.shred', {
            purpose: 'retention: vault values no remaining login row references',
            reason: `shredded ${shredded.length} of ${tokens.length} candidate values from dropped partitions; ${counts.kept} still referenced by newer rows were kept`,
            counts,
            tokens: shredded.map((row) => row.token),
          }),
        ]);
        return counts;
      }),
    );
    if (batch === undefined) break;
    done += batch.checked;
    result.valuesChecked += batch.checked;
    result.valuesKept += batch.kept;
    result.shredded.ip += batch.ip;
    result.shredded.device_id += batch.device_id;
    deps.metrics?.vaultShredded.inc({ field: 'ip' }, batch.ip);
    deps.metrics?.vaultShredded.inc({ field: 'device_id' }, batch.device_id);
  }
  if (total > 0) deps.onProgress?.('shredding unreferenced vault values', total, total);
}

/** lock_timeout (55P03) or a deadlock with a late insert (40P01): wait a moment and try again. */
async function withLockRetries<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await run();
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      if (attempt >= LOCK_RETRIES || (code !== '55P03' && code !== '40P01')) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    }
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new TokenvaultError('interrupted', 'interrupted: run maintenance again to resume');
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
