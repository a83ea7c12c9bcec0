import { parseArgs } from 'node:util';
import { openDatabase } from '../lib/runtime/database.js';
import { processEnv } from '../lib/config/env.js';
import { MAINTENANCE_LOCK_ID, withExclusiveJob } from '../lib/keys/rotation/advisory-lock.js';
import { abortOnSignals } from '../lib/keys/rotation/interrupt.js';
import { loadMaintenanceConfig } from '../lib/lifecycle/config.js';
import { runMaintenance, type MaintenanceReport } from '../lib/lifecycle/maintenance.js';
import { createMaintenanceMetrics, pushMetrics } from '../lib/lifecycle/metrics.js';
import { createProgressReporter } from './progress.js';
import { runMain } from '../lib/entry-point.js';

/**
 * `npm run maintenance [-- --dry-run]`: prepares user_logins partitions ahead, splits the
 * default partition, applies retention (LOGIN_RETENTION_DAYS, QUARANTINE_RETENTION_DAYS) and
 * shreds vault values no row references any more. Run it daily (Kubernetes CronJob
 * deploy/k8s/jobs/maintenance-cronjob.yaml). Interrupted, the next run resumes.
 */
async function main(): Promise<number> {
  const { values } = parseArgs({ options: { 'dry-run': { type: 'boolean', default: false } } });
  const dryRun = values['dry-run'] === true;
  const config = loadMaintenanceConfig(processEnv());
  const database = await openDatabase(config.database, { applicationName: 'tokenvault-maintenance' });
  const metrics = createMaintenanceMetrics();
  const progress = createProgressReporter();
  const interrupt = abortOnSignals((signal) => progress.note(`${signal}: stopping after the current batch (again to exit at once)`));
  const started = performance.now();
  try {
    const report = await withExclusiveJob(database, MAINTENANCE_LOCK_ID, 'maintenance', async () => {
      // The same chain writer the reveal-api uses: the advisory-locked head orders both.
      return runMaintenance(
        { pool: database.pool, metrics, signal: interrupt.signal, onProgress: (step, done, total) => progress.update(step, done, total) },
        {
          loginRetentionDays: config.loginRetentionDays,
          quarantineRetentionDays: config.quarantineRetentionDays,
          batchSize: config.batchSize,
          monthsAhead: config.monthsAhead,
          today: new Date(),
        },
        dryRun,
      );
    });
    progress.stop();
    for (const line of describeReport(report, config.loginRetentionDays, config.quarantineRetentionDays)) console.log(line);
    if (!dryRun) {
      metrics.durationSeconds.set((performance.now() - started) / 1000);
      metrics.lastSuccess.set(Date.now() / 1000);
      if (config.pushgatewayUrl !== undefined) await pushMetrics(metrics, config.pushgatewayUrl);
    }
    return 0;
  } finally {
    interrupt.dispose();
    progress.stop();
    await database.close();
  }
}

function describeReport(report: MaintenanceReport, loginDays: number | undefined, quarantineDays: number | undefined): string[] {
  const would = report.dryRun ? 'would ' : '';
  const lines: string[] = [report.dryRun ? 'dry run: nothing changed' : 'maintenance done'];
  const legacy = report.unpartitioned;
  if ('remaining' in legacy) lines.push(`  unpartitioned table: ${legacy.remaining} rows ${would}move into partitions`);
  else if ('moved' in legacy && legacy.found) lines.push(`  unpartitioned table: ${legacy.moved} rows moved (${legacy.duplicates} already there), table dropped`);
  lines.push(`  partitions ahead: ${report.partitionsCreated.length === 0 ? 'all present' : `${would}create ${report.partitionsCreated.join(', ')}`}`);
  if (report.splitFromDefault.rows > 0) {
    lines.push(`  default partition: ${report.splitFromDefault.rows} rows ${would}move into ${report.splitFromDefault.partitions.join(', ')}`);
  }
  if ('plan' in report.retention) {
    const plan = report.retention.plan;
    lines.push(
      loginDays === undefined
        ? '  login retention: LOGIN_RETENTION_DAYS not set, rows are kept'
        : `  login retention (${loginDays} days, rows before ${plan.loginCutoff}): would drop ${plan.partitions.length} partitions, ` +
            `${plan.partitions.reduce((sum, p) => sum + p.rows, 0)} rows` +
            (plan.partitions.length > 0 ? ` (${plan.partitions.map((p) => `${p.name}: ${p.rows}`).join(', ')})` : ''),
    );
    lines.push(`  vault: would shred ${plan.valuesToShred.ip} ip and ${plan.valuesToShred.device_id} device_id values no remaining row references` +
      (plan.pendingCandidates > 0 ? `, plus check ${plan.pendingCandidates} candidates left by an interrupted run` : ''));
    lines.push(quarantineDays === undefined ? '  quarantine retention: QUARANTINE_RETENTION_DAYS not set, rows are kept' : `  quarantine retention (${quarantineDays} days): would delete ${plan.quarantineRows} rows`);
  } else {
    const result = report.retention.result;
    lines.push(
      loginDays === undefined
        ? '  login retention: LOGIN_RETENTION_DAYS not set, rows are kept'
        : `  login retention (${loginDays} days): dropped ${result.partitionsDropped.length} partitions, ${result.loginRowsRemoved} rows` +
            (result.partitionsDropped.length > 0 ? ` (${result.partitionsDropped.map((p) => p.name).join(', ')})` : ''),
    );
    lines.push(`  vault: shredded ${result.shredded.ip} ip and ${result.shredded.device_id} device_id values; ${result.valuesKept} of ${result.valuesChecked} checked are still referenced and kept`);
    lines.push(quarantineDays === undefined ? '  quarantine retention: QUARANTINE_RETENTION_DAYS not set, rows are kept' : `  quarantine retention (${quarantineDays} days): deleted ${result.quarantineRowsRemoved} rows`);
  }
  return lines;
}

runMain('maintenance', main);
