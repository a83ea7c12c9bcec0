import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import type { DatabaseConfig } from '../lib/config/shared.js';
import { TokenvaultError } from '../lib/errors.js';
import * as schema from './schema.js';

export type Db = NodePgDatabase<typeof schema>;

export interface Database {
  pool: pg.Pool;
  db: Db;
  close(): Promise<void>;
}

/**
 * Opens a pool. With `role`, every connection runs as that role (PostgreSQL's `role`
 * startup parameter), so a service logging in as the owner still gets least privilege.
 */
export function createDatabase(config: DatabaseConfig, options: { applicationName?: string } = {}): Database {
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolSize,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    application_name: options.applicationName ?? 'tokenvault',
    ...(config.role === undefined ? {} : { options: `-c role=${config.role}` }),
  });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', () => {});
  const db = drizzle(pool, { schema });
  return {
    pool,
    db,
    close: () => pool.end(),
  };
}

/** PostgreSQL errors that mean "try again later" rather than "this data is wrong". */
const TRANSIENT_SQLSTATE_CLASSES = ['08', '53', '57', '58', '40'];
const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

export function isTransientDbError(error: unknown): boolean {
  if (error instanceof TokenvaultError) return error.transient;
  const candidate = error as { code?: unknown; message?: unknown; cause?: unknown } | null;
  if (candidate === null || typeof candidate !== 'object') return false;
  const code = typeof candidate.code === 'string' ? candidate.code : undefined;
  if (code !== undefined) {
    if (TRANSIENT_NODE_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code)) return TRANSIENT_SQLSTATE_CLASSES.includes(code.slice(0, 2));
  }
  const message = typeof candidate.message === 'string' ? candidate.message : '';
  if (/Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message)) {
    return true;
  }
  return candidate.cause !== undefined && candidate.cause !== error ? isTransientDbError(candidate.cause) : false;
}
