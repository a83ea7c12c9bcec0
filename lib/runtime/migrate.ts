import type { Database } from '../../db/client.js';
import { runMigrations } from '../../db/migrate.js';
import { backfillAuditTree, type TreeExtension } from '../audit/tree-backfill.js';

export interface MigrateOptions {
  /** The schema is current; the audit tree backfill starts. */
  onMigrated?: () => void;
  /** After each transaction of the audit tree backfill (caughtUp: nothing left to cover). */
  onTreeProgress?: (extension: TreeExtension) => void;
}

/**
 * Brings a database to the current schema, as its owner: the migrations (schema, roles, grants,
 * audit triggers; db/migrate.ts), then the audit log's Merkle tree over rows that have no leaf
 * yet (a log from before migration 0011), in transactions of 5,000 rows under the chain lock so
 * appends interleave; resumable, a no-op when the tree is complete. Used by `npm run db:migrate`,
 * `npm start` and the benchmarks, so each gets the same schema.
 */
export async function migrate(owner: Database, options: MigrateOptions = {}): Promise<TreeExtension> {
  await runMigrations(owner);
  options.onMigrated?.();
  return backfillAuditTree(owner.pool, {
    batchRows: 5_000,
    lockTimeoutMs: 60_000,
    ...(options.onTreeProgress === undefined ? {} : { onProgress: options.onTreeProgress }),
  });
}
