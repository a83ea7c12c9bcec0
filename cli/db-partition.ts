import { openDatabase } from '../lib/runtime/database.js';
import { processEnv } from '../lib/config/env.js';
import { MAINTENANCE_LOCK_ID, withExclusiveJob } from '../lib/keys/rotation/advisory-lock.js';
import { abortOnSignals } from '../lib/keys/rotation/interrupt.js';
import { loadMaintenanceConfig } from '../lib/lifecycle/config.js';
import { createMaintenanceMetrics } from '../lib/lifecycle/metrics.js';
import { moveUnpartitioned } from '../lib/lifecycle/unpartitioned.js';
import { createProgressReporter } from './progress.js';
import { runMain } from '../lib/entry-point.js';

/**
 * `npm run db:partition`: moves the rows of a pre-partitioning user_logins (renamed
 * user_logins_unpartitioned by migration 0007) into the monthly partitions, online, in
 * resumable batches of MAINTENANCE_BATCH_SIZE, with a progress bar. Ctrl-C stops after the
 * current batch; run it again to continue.
 */
async function main(): Promise<number> {
  const config = loadMaintenanceConfig(processEnv());
  const database = await openDatabase(config.database, { applicationName: 'tokenvault-db-partition' });
  const progress = createProgressReporter();
  const interrupt = abortOnSignals((signal) => progress.note(`${signal}: stopping after the current batch (again to exit at once)`));
  try {
    const result = await withExclusiveJob(database, MAINTENANCE_LOCK_ID, 'maintenance', () =>
      moveUnpartitioned(
        {
          pool: database.pool,
          metrics: createMaintenanceMetrics(),
          signal: interrupt.signal,
          onProgress: (step, done, total) => progress.update(step, done, total),
        },
        config.batchSize,
      ),
    );
    progress.stop();
    if (!result.found) {
      console.log('user_logins is already partitioned: nothing to move');
      return 0;
    }
    console.log(`moved ${result.moved} rows into partitions (${result.duplicates} were already there)`);
    if (!result.completed) {
      console.log('interrupted: run the command again to move the rest');
      return 130;
    }
    console.log('done: user_logins_unpartitioned is empty and dropped');
    return 0;
  } finally {
    interrupt.dispose();
    progress.stop();
    await database.close();
  }
}

runMain('db:partition', main);
