import { z } from 'zod';
import { createDatabase } from '../db/client.js';
import { runMigrations } from '../db/migrate.js';
import { parseEnv, processEnv } from '../lib/config/env.js';
import { sharedEnvSchema } from '../lib/config/shared.js';
import { runMain } from '../lib/entry-point.js';
import { backfillAuditTree } from '../lib/audit/tree-backfill.js';

/**
 * `npm run db:migrate`: applies schema, roles, grants and audit triggers as the database owner,
 * then builds the audit log's Merkle tree over rows that have no leaf yet (an existing log,
 * migration 0011): in transactions of 5,000 rows under the chain lock, resumable, a no-op when
 * the tree is complete.
 */
const migrateEnvSchema = z.object({ DATABASE_URL: sharedEnvSchema.shape.DATABASE_URL });

async function main(): Promise<number> {
  const env = parseEnv(migrateEnvSchema, processEnv());
  const database = createDatabase({ url: env.DATABASE_URL, role: undefined, poolSize: 2 }, { applicationName: 'tokenvault-migrate' });
  try {
    await runMigrations(database);
    console.log('migrations applied');
    const tree = await backfillAuditTree(database.pool, {
      batchRows: 5_000,
      lockTimeoutMs: 60_000,
      onProgress: (step) => {
        if (!step.caughtUp) console.log(`audit Merkle tree: ${step.size} rows covered…`);
      },
    });
    console.log(tree.size === tree.from ? `audit Merkle tree complete (${tree.size} rows)` : `audit Merkle tree built over rows ${tree.from + 1}..${tree.size}`);
    return 0;
  } finally {
    await database.close();
  }
}

runMain('db:migrate', main);
