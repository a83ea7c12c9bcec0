import { z } from 'zod';
import { parseEnv, processEnv } from '../lib/config/env.js';
import { sharedEnvSchema } from '../lib/config/shared.js';
import { runMain } from '../lib/entry-point.js';
import { openDatabase } from '../lib/runtime/database.js';
import { migrate } from '../lib/runtime/migrate.js';

/**
 * `npm run db:migrate`: applies schema, roles, grants and audit triggers as the database owner,
 * then builds the audit log's Merkle tree over rows that have no leaf yet (an existing log,
 * migration 0011): in transactions of 5,000 rows under the chain lock, resumable, a no-op when
 * the tree is complete.
 */
const migrateEnvSchema = z.object({ DATABASE_URL: sharedEnvSchema.shape.DATABASE_URL });

async function main(): Promise<number> {
  const env = parseEnv(migrateEnvSchema, processEnv());
  const database = await openDatabase({ url: env.DATABASE_URL, role: undefined, poolSize: 2 }, { applicationName: 'tokenvault-migrate' });
  try {
    const tree = await migrate(database, {
      onMigrated: () => console.log('migrations applied'),
      onTreeProgress: (step) => {
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
