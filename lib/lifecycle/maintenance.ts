import type pg from 'pg';
import type { MaintenanceMetrics } from './metrics.js';
import { DEFAULT_PARTITION, listPartitions, monthStart, prepareMonths, splitDefault } from './partitions.js';
import { applyRetention, planRetention, type RetentionPlan, type RetentionResult, type RetentionSettings } from './retention.js';
import { moveUnpartitioned, unpartitionedRows, type MoveResult } from './unpartitioned.js';

export interface MaintenanceDeps {
  pool: pg.Pool;
  metrics: MaintenanceMetrics;
  signal?: AbortSignal;
  onProgress?: (step: string, done: number, total: number) => void;
}

export interface MaintenanceSettings extends RetentionSettings {
  monthsAhead: number;
}

export interface MaintenanceReport {
  dryRun: boolean;
  /** Rows of the pre-partitioning table: moved (run) or still there (dry run). */
  unpartitioned: MoveResult | { found: true; remaining: number } | { found: false };
  partitionsCreated: string[];
  /** Months split out of the default partition, with the rows moved (dry run: that would move). */
  splitFromDefault: { partitions: string[]; rows: number };
  retention: { plan: RetentionPlan } | { result: RetentionResult };
}

/**
 * One maintenance run, in order: finish moving a pre-partitioning table; prepare the month
 * partitions ahead; split rows that landed in the default partition into their months; apply
 * retention (drop expired months, expire quarantine, shred orphaned vault values). With
 * dryRun nothing changes and nothing is audited: the report says what would happen.
 */
export async function runMaintenance(deps: MaintenanceDeps, settings: MaintenanceSettings, dryRun: boolean): Promise<MaintenanceReport> {
  const { pool } = deps;
  if (dryRun) {
    const remaining = await unpartitionedRows(pool);
    const existing = new Set((await listPartitions(pool)).map((p) => p.from));
    const missing: string[] = [];
    for (let offset = 0; offset <= settings.monthsAhead; offset += 1) {
      const month = monthStart(settings.today, offset);
      if (!existing.has(month)) missing.push(`user_logins_p${month.slice(0, 4)}${month.slice(5, 7)}`);
    }
    const { rows } = await pool.query<{ month: string; n: string }>(
      `SELECT to_char(date_trunc('month', create_date), 'YYYYMM') AS month, count(*) AS n FROM ${DEFAULT_PARTITION} GROUP BY 1 ORDER BY 1`,
    );
    return {
      dryRun,
      unpartitioned: remaining === undefined ? { found: false } : { found: true, remaining },
      partitionsCreated: missing,
      splitFromDefault: { partitions: rows.map((row) => `user_logins_p${row.month}`), rows: rows.reduce((sum, row) => sum + Number(row.n), 0) },
      retention: { plan: await planRetention(pool, settings) },
    };
  }

  const unpartitioned = await moveUnpartitioned(deps, settings.batchSize);
  const partitionsCreated = await prepareMonths(pool, settings.today, settings.monthsAhead);
  deps.metrics.partitionsCreated.inc(partitionsCreated.length);
  const split = await splitDefault(pool);
  deps.metrics.partitionsCreated.inc(split.partitions.length);
  deps.metrics.rowsMoved.inc({ from: 'default' }, split.rows);
  const result = await applyRetention(deps, settings);
  return { dryRun, unpartitioned, partitionsCreated, splitFromDefault: split, retention: { result } };
}
