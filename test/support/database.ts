import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { createDatabase, type Database } from '../../db/client.js';
import { runMigrations } from '../../db/migrate.js';
import { createDatabaseIfMissing } from '../../local/embedded-postgres.js';

export interface TestDatabase {
  /** Owner connection URL of a fresh, migrated database. */
  url: string;
  /** Owner connection (full rights), for setup and assertions. */
  owner: Database;
  /** A pool (of `poolSize` connections, default 5) that runs every statement as the given least-privilege role. */
  as(role: 'ingestor' | 'reveal_api' | 'analyst' | 'auditor', poolSize?: number): Database;
  drop(): Promise<void>;
}

/** Creates a fresh database in the shared test cluster and applies all migrations. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = inject('postgresAdminUrl');
  const name = `t_${randomBytes(6).toString('hex')}`;
  await createDatabaseIfMissing(adminUrl, name);
  const url = adminUrl.replace(/\/postgres$/, `/${name}`);
  return migratedDatabase(url, async () => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await client.end();
  });
}

/** Migrates the database at `url` (as its owner); `drop()` closes every pool opened, then runs `remove`. */
export async function migratedDatabase(url: string, remove: () => Promise<void>): Promise<TestDatabase> {
  const owner = createDatabase({ url, role: undefined, poolSize: 5 });
  await runMigrations(owner);
  const opened: Database[] = [owner];
  return {
    url,
    owner,
    as(role, poolSize = 5) {
      const db = createDatabase({ url, role, poolSize });
      opened.push(db);
      return db;
    },
    async drop() {
      await Promise.all(opened.splice(0).map((db) => db.close().catch(() => undefined)));
      await remove();
    },
  };
}
