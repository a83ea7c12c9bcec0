import { createDatabase, type Database, type DatabaseConfig, type DatabaseOptions } from '../../db/client.js';
import { describeDatabaseFailure } from '../../db/connection-error.js';
import { TokenvaultError } from '../errors.js';

/** The database did not answer at start; the message says why and names the setting (DATABASE_URL). */
export class DatabaseUnreachableError extends TokenvaultError {
  constructor(message: string, cause: unknown) {
    super('database_unreachable', message, { cause, transient: true });
  }
}

export interface OpenDatabaseOptions extends DatabaseOptions {
  /**
   * Prove the database answers before returning (a process that cannot do anything without it:
   * the ingestor, npm start, the benchmarks). Without it the pool connects on first use, and a
   * service that waits for its database (reveal-api) starts unready instead of stopping.
   */
  reach?: boolean;
}

/**
 * A pool for `config` (db/client.ts), reached once when asked to. If it does not answer, the
 * pool is closed and a DatabaseUnreachableError says why in one sentence (db/connection-error.ts).
 */
export async function openDatabase(config: DatabaseConfig, options: OpenDatabaseOptions = {}): Promise<Database> {
  const { reach = false, ...databaseOptions } = options;
  const database = createDatabase(config, databaseOptions);
  if (!reach) return database;
  try {
    await database.pool.query('SELECT 1');
  } catch (error) {
    await database.close().catch(() => undefined);
    throw new DatabaseUnreachableError(describeDatabaseFailure(error, config.url), error);
  }
  return database;
}
