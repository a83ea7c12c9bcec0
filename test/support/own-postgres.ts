import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, type Database } from '../../db/client.js';
import { runMigrations } from '../../db/migrate.js';
import { startEmbeddedPostgres, type RunningPostgres } from '../../local/embedded-postgres.js';

/**
 * A PostgreSQL cluster of the test's own (not the shared one of global-setup), so the test
 * may stop it (a fast shutdown: SIGINT, as `pg_ctl stop -m fast`, which terminates every
 * session with SQLSTATE 57P01) and start it again on the same port and data, as a failover
 * looks to the services.
 */
export interface OwnPostgres {
  /** Owner URL of the migrated `tokenvault` database. */
  url: string;
  owner: Database;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'tokenvault-failover-pg-'));
  // As root the server runs as the postgres user, which must reach the data directory.
  await chmod(dir, 0o755);
  const port = await freePort();
  const start = () => startEmbeddedPostgres({ dir: join(dir, 'data'), port, persistent: true });
  let server: RunningPostgres | undefined = await start();
  const url = server.url;
  const owner = createDatabase({ url, role: undefined, poolSize: 3 });
  await runMigrations(owner);
  return {
    url,
    owner,
    async stop() {
      await server?.stop();
      server = undefined;
    },
    async start() {
      server ??= await start();
    },
    async close() {
      await owner.close().catch(() => undefined);
      await server?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
