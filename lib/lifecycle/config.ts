import type { z } from 'zod';
import { envInt, envUrl, parseEnv, type Env } from '../config/env.js';
import { databaseConfig, sharedEnvSchema, type DatabaseConfig } from '../config/shared.js';

/**
 * Settings of `npm run maintenance` (and `npm run db:partition`). They run as the database
 * owner: creating, attaching and dropping partitions and shredding vault values are owner
 * rights no service role has. No key provider: shredding deletes ciphertexts, it never opens them.
 */
export const maintenanceEnvSchema = sharedEnvSchema.extend({
  /** Login rows older than this many days go, a whole month's partition at a time. Unset: kept forever. */
  LOGIN_RETENTION_DAYS: envInt(1, 36_500).optional(),
  /** Quarantined messages (encrypted bodies) older than this many days are deleted. Unset: kept forever. */
  QUARANTINE_RETENTION_DAYS: envInt(1, 36_500).optional(),
  /** Monthly partitions prepared ahead of the current month. */
  PARTITION_MONTHS_AHEAD: envInt(1, 60).default(3),
  /** Rows (moves, quarantine deletes) or vault tokens (shredding) per transaction. */
  MAINTENANCE_BATCH_SIZE: envInt(1, 100_000).default(1000),
  /** Prometheus Pushgateway that receives the run's metrics (a batch job has no /metrics to scrape). */
  METRICS_PUSHGATEWAY_URL: envUrl.optional(),
});

export interface MaintenanceConfig {
  database: DatabaseConfig;
  logLevel: z.infer<typeof maintenanceEnvSchema>['LOG_LEVEL'];
  loginRetentionDays: number | undefined;
  quarantineRetentionDays: number | undefined;
  monthsAhead: number;
  batchSize: number;
  pushgatewayUrl: string | undefined;
}

export function loadMaintenanceConfig(env: Env): MaintenanceConfig {
  const parsed = parseEnv(maintenanceEnvSchema, env);
  const database = databaseConfig(parsed);
  return {
    database: { ...database, poolSize: Math.min(database.poolSize, 4) },
    logLevel: parsed.LOG_LEVEL,
    loginRetentionDays: parsed.LOGIN_RETENTION_DAYS,
    quarantineRetentionDays: parsed.QUARANTINE_RETENTION_DAYS,
    monthsAhead: parsed.PARTITION_MONTHS_AHEAD,
    batchSize: parsed.MAINTENANCE_BATCH_SIZE,
    pushgatewayUrl: parsed.METRICS_PUSHGATEWAY_URL,
  };
}
