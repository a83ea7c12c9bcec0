import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { errorSummary } from './errors.js';
import * as schema from './schema.js';

export type Db = NodePgDatabase<typeof schema>;

export interface DatabaseConfig {
  url: string;
  role: string | undefined;
  poolSize: number;
}

/** The part of a pino logger the pool needs (db/ depends on nothing of ours). */
export interface ConnectionLogger {
  warn(object: object, message: string): void;
}

export interface Database {
  pool: pg.Pool;
  db: Db;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  applicationName?: string;
  /** Where lost connections are reported; silent without one. */
  logger?: ConnectionLogger;
}

/**
 * Opens a pool. With `role`, every connection runs as that role (PostgreSQL's `role`
 * startup parameter), so a service logging in as the owner still gets least privilege.
 */
export function createDatabase(config: DatabaseConfig, options: DatabaseOptions = {}): Database {
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolSize,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    application_name: options.applicationName ?? 'tokenvault',
    ...(config.role === undefined ? {} : { options: `-c role=${config.role}` }),
  });
  guardConnections(pool, options.logger);
  const db = drizzle(pool, { schema });
  return {
    pool,
    db,
    close: () => pool.end(),
  };
}

/**
 * A lost connection (failover, server restart, network) must never stop the process. pg-pool
 * listens for 'error' only on idle clients (and re-emits it on the pool); a client that is
 * checked out (by drizzle, pool.query, withClient) would emit an unhandled 'error' event when
 * the server terminates it between two queries. Every client gets a listener for its whole
 * life; the query that next uses it fails instead, with an error that is classed transient.
 */
function guardConnections(pool: pg.Pool, logger: ConnectionLogger | undefined): void {
  const inUse = new WeakSet<pg.PoolClient>();
  pool.on('acquire', (client) => inUse.add(client));
  pool.on('release', (_error, client) => inUse.delete(client));
  pool.on('connect', (client) => {
    client.on('error', (error) => {
      if (inUse.has(client)) logger?.warn({ err: errorSummary(error) }, 'database connection lost while in use; its work fails and is retried');
    });
  });
  // Idle clients: pg-pool removes them and emits here.
  pool.on('error', (error) => logger?.warn({ err: errorSummary(error) }, 'idle database connection lost; the pool opens a new one when needed'));
}
