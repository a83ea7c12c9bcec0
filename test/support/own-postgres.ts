import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres, type RunningPostgres } from '../../local/embedded-postgres.js';
import { freePort } from '../../local/free-port.js';
import { migratedDatabase, type TestDatabase } from './database.js';

/**
 * A PostgreSQL cluster of the test's own (not the shared one of global-setup), so the test
 * may stop it (a fast shutdown: SIGINT, as `pg_ctl stop -m fast`, which terminates every
 * session with SQLSTATE 57P01) and start it again on the same port and data, as a failover
 * looks to the services.
 */
export interface OwnPostgres extends TestDatabase {
  /** Fast shutdown of the whole cluster (every session terminated). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** Stops the cluster and removes its data. */
  close(): Promise<void>;
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'tokenvault-failover-pg-'));
  // As root the server runs as the postgres user, which must reach the data directory.
  await chmod(dir, 0o755);
  const port = await freePort();
  const start = () => startEmbeddedPostgres({ dir: join(dir, 'data'), port });
  let server: RunningPostgres | undefined = await start();
  // drop() closes the pools only: the cluster and its data go with close().
  const database = await migratedDatabase(server.url, async () => undefined);
  return {
    ...database,
    async stop() {
      await server?.stop();
      server = undefined;
    },
    async start() {
      server ??= await start();
    },
    async close() {
      await database.drop();
      await server?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
