import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The unprivileged account PostgreSQL runs as when we are root (it refuses to run as root). */
export interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

const NAME = 'postgres';

/** PostgreSQL cannot be started as root: we cannot help, say so in one line with the fix. */
export class PostgresUserError extends Error {}

/**
 * Undefined when not root (PostgreSQL runs as us). As root: the `postgres` system account,
 * created when missing (containers rarely have one).
 */
export async function postgresRunAs(): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const existing = await lookup();
  if (existing !== undefined) return existing;
  try {
    await run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', NAME]);
  } catch (cause) {
    throw new PostgresUserError(
      'running as root, PostgreSQL needs an unprivileged `postgres` account and `useradd` could not create one: create it (useradd --system postgres) or run as an ordinary user',
      { cause },
    );
  }
  const created = await lookup();
  if (created === undefined) throw new PostgresUserError('the `postgres` account was created but cannot be looked up (id postgres)');
  return created;
}

async function lookup(): Promise<RunAs | undefined> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', NAME]), run('id', ['-g', NAME])]);
    return { name: NAME, uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) };
  } catch {
    return undefined;
  }
}

/**
 * Whether `runAs` can search (traverse) `dir`, checked by that account itself: the permission
 * bits of every ancestor, ACLs and group membership all count, exactly as for PostgreSQL.
 */
export function canTraverse(runAs: RunAs, dir: string): boolean {
  const result = spawnSync('/bin/sh', ['-c', 'test -d "$1" && test -x "$1"', 'sh', dir], { uid: runAs.uid, gid: runAs.gid, stdio: 'ignore' });
  return result.status === 0;
}

/** Whether `runAs` can execute `file` (every directory above it included). */
export function canExecute(runAs: RunAs, file: string): boolean {
  const result = spawnSync(file, ['--version'], { uid: runAs.uid, gid: runAs.gid, stdio: 'ignore' });
  return result.error === undefined && result.status === 0;
}
