import { randomBytes } from 'node:crypto';
import { lstat, mkdtemp, readdir, readlink, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { PostgresAlreadyRunningError, PostgresPortInUseError, startEmbeddedPostgres, type RunningPostgres } from '../../local/embedded-postgres.js';

/** initdb and a server start take seconds alone, far longer on a shared, loaded machine. */
const STARTS = 120_000;
const started: RunningPostgres[] = [];
const scratch: string[] = [];
afterAll(async () => {
  await Promise.all(started.map((server) => server.stop().catch(() => undefined)));
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function start(options: Parameters<typeof startEmbeddedPostgres>[0]): Promise<RunningPostgres> {
  const server = await startEmbeddedPostgres(options);
  started.push(server);
  return server;
}

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Temp-directory entries that hold initdb's password file while it runs (a private 0700 directory each, removed when initdb ends). */
async function passwordFiles(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((name) => name.startsWith('tokenvault-initdb-'));
}

describe('embedded PostgreSQL', () => {
  it('runs a temporary cluster on a port the OS chose and leaves nothing behind when stopped', async () => {
    const prefix = `tokenvault-test-eph-${randomBytes(4).toString('hex')}-`;
    const server = await start({ temporaryPrefix: prefix });
    expect(server.port).toBeGreaterThan(0);
    expect(await query(server.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect((await readdir(tmpdir())).filter((name) => name.startsWith(prefix))).toHaveLength(1);
    await server.stop();
    expect((await readdir(tmpdir())).filter((name) => name.startsWith(prefix))).toEqual([]);
  }, STARTS);

  it('a start that fails (port taken) leaves no directory and no password file in the temp directory', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const prefix = `tokenvault-test-fail-${randomBytes(4).toString('hex')}-`;
    const before = await passwordFiles();
    try {
      await expect(startEmbeddedPostgres({ temporaryPrefix: prefix, port })).rejects.toBeInstanceOf(PostgresPortInUseError);
    } finally {
      blocker.close();
    }
    expect((await readdir(tmpdir())).filter((name) => name.startsWith(prefix))).toEqual([]);
    // Other test files run initdb concurrently: their password directories may exist right now, but only as 0700.
    for (const name of (await passwordFiles()).filter((entry) => !before.includes(entry))) {
      const mode = await stat(join(tmpdir(), name)).then((entry) => entry.mode & 0o077, () => 0);
      expect(mode, `${name} readable by others`).toBe(0);
    }
  }, STARTS);

  it('refuses a data directory a live server holds, naming its pid', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'tokenvault-test-kept-'));
    scratch.push(parent);
    // As root the cluster of a directory in a 0700 parent lives in the temp directory: removed too.
    onTestFinished(async () => {
      const relocated = await readlink(join(parent, 'postgres')).catch(() => undefined);
      if (relocated !== undefined) await Promise.all(started.map((server) => server.stop().catch(() => undefined))).then(() => rm(relocated, { recursive: true, force: true }));
    });
    const first = await start({ dir: join(parent, 'postgres') });
    const second = startEmbeddedPostgres({ dir: join(parent, 'postgres') });
    await expect(second).rejects.toBeInstanceOf(PostgresAlreadyRunningError);
    await expect(second).rejects.toMatchObject({ pid: first.pid });
  }, STARTS);

  it.runIf(process.getuid?.() === 0)(
    'as root, keeps a cluster for a data directory in a private (0700) directory, and a deleted directory means a fresh cluster',
    async () => {
      const privateDir = await mkdtemp(join(tmpdir(), 'tokenvault-test-private-'));
      scratch.push(privateDir);
      expect((await stat(privateDir)).mode & 0o777).toBe(0o700);
      const dir = join(privateDir, 'checkout', '.data', 'postgres');
      // The cluster lives outside privateDir (which afterAll removes): removed here, whatever fails.
      onTestFinished(async () => {
        const relocated = await readlink(dir).catch(() => undefined);
        if (relocated !== undefined) await rm(relocated, { recursive: true, force: true });
      });

      const first = await start({ dir });
      await query(first.url, 'CREATE TABLE kept (id int)');
      await first.stop();
      expect((await lstat(dir)).isSymbolicLink()).toBe(true);
      const relocated = await readlink(dir);
      expect((await stat(relocated)).mode & 0o777).toBe(0o700);

      const again = await start({ dir });
      expect(await query(again.url, 'SELECT count(*)::int AS n FROM kept')).toEqual([{ n: 0 }]);
      await again.stop();

      await rm(dir);
      const fresh = await start({ dir });
      await expect(query(fresh.url, 'SELECT 1 FROM kept')).rejects.toThrow(/does not exist/);
      await fresh.stop();
    },
    3 * STARTS,
  );
});
