import { fileURLToPath } from 'node:url';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import type { Database } from './client.js';
import { withClient } from './transaction.js';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url));

// Arbitrary constant: serialises migrators of this project on one database.
const MIGRATION_LOCK_ID = 7_468_021;

/**
 * Applies the committed SQL migrations (schema, roles, grants, audit triggers) as the
 * database owner. Idempotent; an advisory lock makes concurrent starts (several replicas,
 * the compose `migrate` job beside `npm start`) wait for each other instead of racing.
 */
export async function runMigrations(database: Database): Promise<void> {
  await withClient(database.pool, async (lockClient) => {
    try {
      await lockClient.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
      await migrate(database.db, { migrationsFolder: MIGRATIONS_FOLDER });
    } finally {
      await lockClient.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
    }
  });
}
