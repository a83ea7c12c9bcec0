import { createHash } from 'node:crypto';
import { chown, lstat, mkdir, mkdtemp, readlink, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { canTraverse, PostgresUserError, type RunAs } from './system-user.js';

export interface DataDir {
  /** What PostgreSQL is given (-D). */
  path: string;
  /** Removes what was created for a temporary cluster; a no-op for a kept one. */
  remove(): Promise<void>;
}

/**
 * A private temporary cluster (tests, benchmarks): `<tmp>/<prefix>XXXXXX/data`, the parent 0700
 * and owned by the account that runs PostgreSQL; `remove()` deletes all of it.
 */
export async function temporaryDataDir(prefix: string, runAs: RunAs | undefined): Promise<DataDir> {
  const parent = await mkdtemp(join(tmpdir(), prefix));
  if (runAs !== undefined) await chown(parent, runAs.uid, runAs.gid);
  return { path: join(parent, 'data'), remove: () => rm(parent, { recursive: true, force: true }) };
}

/**
 * The data directory `dir` kept between runs. As root, when the `postgres` account cannot
 * reach it (a checkout in a 0700 directory), the cluster lives in `<tmp>/tokenvault-pgdata-<hash
 * of dir>` (0700, owned by postgres) and `dir` is a symlink to it, so deleting `dir` still
 * means "start from scratch": a missing link discards the old cluster.
 */
export async function keptDataDir(dir: string, runAs: RunAs | undefined): Promise<DataDir> {
  const wanted = resolve(dir);
  const keep: DataDir = { path: wanted, remove: async () => undefined };
  await mkdir(dirname(wanted), { recursive: true });
  if (runAs === undefined) return keep;

  const existing = await lstat(wanted).catch(() => undefined);
  if (existing?.isDirectory() === true) {
    if (canTraverse(runAs, wanted)) return keep;
    throw new PostgresUserError(
      `the data directory ${wanted} is not reachable by the \`${runAs.name}\` account PostgreSQL runs as: delete it to start from scratch`,
    );
  }
  if (existing === undefined && canTraverse(runAs, dirname(wanted))) {
    await mkdir(wanted, { mode: 0o700 });
    await chown(wanted, runAs.uid, runAs.gid);
    return keep;
  }

  const relocated = join(tmpdir(), `tokenvault-pgdata-${createHash('sha256').update(wanted).digest('hex').slice(0, 16)}`);
  if (existing?.isSymbolicLink() === true) {
    const target = await readlink(wanted);
    if (target === relocated && (await ownedPrivately(relocated, runAs))) return { path: relocated, remove: keep.remove };
    // A link of the user's own (a bigger disk, say) is theirs to keep when PostgreSQL can use it.
    if (target !== relocated && canTraverse(runAs, wanted)) return keep;
  }
  // No usable link: a fresh cluster (the old one, if any, belonged to a deleted data directory).
  if (!canTraverse(runAs, tmpdir())) {
    throw new PostgresUserError(
      `running as root, PostgreSQL runs as \`${runAs.name}\`, which can reach neither ${dirname(wanted)} nor ${tmpdir()}: ` +
        `make one of them traversable (chmod o+x) or run as an ordinary user`,
    );
  }
  await rm(wanted, { force: true });
  await rm(relocated, { recursive: true, force: true });
  await mkdir(relocated, { mode: 0o700 });
  await chown(relocated, runAs.uid, runAs.gid);
  await symlink(relocated, wanted);
  return { path: relocated, remove: keep.remove };
}

async function ownedPrivately(dir: string, runAs: RunAs): Promise<boolean> {
  const stat = await lstat(dir).catch(() => undefined);
  return stat !== undefined && stat.isDirectory() && stat.uid === runAs.uid && (stat.mode & 0o077) === 0;
}

/** A private directory for a file only `runAs` (or we) may read, e.g. initdb's password file. */
export async function privateScratchDir(runAs: RunAs | undefined): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'tokenvault-initdb-'));
  if (runAs !== undefined) await chown(path, runAs.uid, runAs.gid);
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
