import { Counter, Gauge, Pushgateway, Registry } from 'prom-client';

export interface MaintenanceMetrics {
  registry: Registry;
  partitionsCreated: Counter;
  rowsMoved: Counter<'from'>;
  partitionsDropped: Counter;
  rowsRemoved: Counter<'table'>;
  vaultShredded: Counter<'field'>;
  lastSuccess: Gauge;
  durationSeconds: Gauge;
}

/** What one maintenance run did, on a registry of its own (pushed at the end: a batch job is not scraped). */
export function createMaintenanceMetrics(registry = new Registry()): MaintenanceMetrics {
  const prefix = 'tokenvault_maintenance_';
  return {
    registry,
    partitionsCreated: new Counter({ name: `${prefix}partitions_created_total`, help: 'user_logins partitions created (ahead of time or split out of the default partition)', registers: [registry] }),
    rowsMoved: new Counter({
      name: `${prefix}rows_moved_total`,
      help: 'user_logins rows moved into their month partition, by origin (default partition, unpartitioned table)',
      labelNames: ['from'],
      registers: [registry],
    }),
    partitionsDropped: new Counter({ name: `${prefix}retention_partitions_dropped_total`, help: 'user_logins partitions dropped past LOGIN_RETENTION_DAYS', registers: [registry] }),
    rowsRemoved: new Counter({
      name: `${prefix}retention_rows_removed_total`,
      help: 'Rows removed by retention, by table (user_logins: with their partitions; quarantine)',
      labelNames: ['table'],
      registers: [registry],
    }),
    vaultShredded: new Counter({
      name: `${prefix}retention_vault_values_shredded_total`,
      help: 'Vault values crypto-shredded because no remaining row references them, by field',
      labelNames: ['field'],
      registers: [registry],
    }),
    lastSuccess: new Gauge({ name: `${prefix}last_success_timestamp_seconds`, help: 'When a maintenance run last completed', registers: [registry] }),
    durationSeconds: new Gauge({ name: `${prefix}duration_seconds`, help: 'Duration of the last maintenance run', registers: [registry] }),
  };
}

/** Replaces this job's metrics on the Pushgateway (one group per job). */
export async function pushMetrics(metrics: MaintenanceMetrics, url: string): Promise<void> {
  await new Pushgateway(url, { timeout: 10_000 }, metrics.registry).push({ jobName: 'tokenvault_maintenance' });
}
