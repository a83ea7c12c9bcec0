import { z } from 'zod';
import { createDatabase } from '../db/client.js';
import { runMigrations } from '../db/migrate.js';
import { parseEnv, processEnv } from '../lib/config/env.js';
import { sharedEnvSchema } from '../lib/config/shared.js';
import { runMain } from '../lib/entry-point.js';

/** `npm run db:migrate`: applies schema, roles, grants and audit triggers as the database owner. */
const migrateEnvSchema = z.object({ DATABASE_URL: sharedEnvSchema.shape.DATABASE_URL });

async function main(): Promise<number> {
  const env = parseEnv(migrateEnvSchema, processEnv());
  const database = createDatabase({ url: env.DATABASE_URL, role: undefined, poolSize: 2 }, { applicationName: 'tokenvault-migrate' });
  try {
    await runMigrations(database);
    console.log('migrations applied');
    return 0;
  } finally {
    await database.close();
  }
}

runMain('db:migrate', main);
