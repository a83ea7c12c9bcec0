import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { TokenvaultError } from '../../lib/errors.js';

/** What the witness remembers per log: the latest checkpoint it cosigned. */
export interface LogState {
  origin: string;
  size: number;
  rootHash: Buffer;
  /** The checkpoint with the log signatures the witness verified and its own cosignature(s). */
  checkpoint: string;
  updatedAt: string;
}

const stateFileSchema = z
  .object({
    origin: z.string().min(1),
    size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    root_hash: z.string().regex(/^[A-Za-z0-9+/]{43}=$/),
    checkpoint: z.string(),
    updated_at: z.string(),
  })
  .strict();

export class WitnessStateError extends TokenvaultError {}

/** The origin hash of tlog-witness's monitoring path: "the SHA-256 hash of the log's origin, hex encoded, in lowercase". */
export function originHash(origin: string): string {
  return createHash('sha256').update(origin, 'utf8').digest('hex');
}

/**
 * One JSON file per log under `<dir>/logs/<origin hash>.json`. A new state is written to a temp
 * file, fsynced, renamed over the old one, and the directory fsynced: after a crash at any moment
 * the file holds either the old or the new state, never a mix, and a state is on disk before the
 * witness answers (tlog-witness: "The witness MUST persist the new checkpoint before responding").
 * Requests for one origin run one at a time (withLock): the check of the old size and the write
 * of the new state are atomic, as the spec requires against the rollback race it describes.
 */
export class WitnessStateStore {
  private readonly locks = new Map<string, Promise<unknown>>();

  private constructor(
    private readonly dir: string,
    private readonly pidFile: string,
  ) {}

  /** Creates the directories, removes temp files a crash left behind, and claims the directory for this process. */
  static async open(dir: string): Promise<WitnessStateStore> {
    const logs = join(dir, 'logs');
    await mkdir(logs, { recursive: true, mode: 0o700 });
    const pidFile = join(dir, 'witness.pid');
    await claim(pidFile);
    for (const name of await readdir(logs)) {
      if (name.includes('.tmp-')) await rm(join(logs, name), { force: true });
    }
    return new WitnessStateStore(dir, pidFile);
  }

  /** Runs `work` after every earlier call for the same origin has finished. */
  async withLock<T>(origin: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(origin) ?? Promise.resolve();
    const run = previous.then(work, work);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(origin, settled);
    try {
      return await run;
    } finally {
      if (this.locks.get(origin) === settled) this.locks.delete(origin);
    }
  }

  async read(origin: string): Promise<LogState | undefined> {
    const state = await this.readByHash(originHash(origin));
    if (state !== undefined && state.origin !== origin) throw new WitnessStateError('witness_state_corrupt', `the state file of ${origin} names another origin`);
    return state;
  }

  /** The state file named by an origin hash (the monitoring path), if any. */
  async readByHash(hash: string): Promise<LogState | undefined> {
    if (!/^[0-9a-f]{64}$/.test(hash)) return undefined;
    let text: string;
    try {
      text = await readFile(this.file(hash), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new WitnessStateError('witness_state_unreadable', `cannot read the witness state ${this.file(hash)}`, { cause: error, transient: true });
    }
    let parsed: z.infer<typeof stateFileSchema>;
    try {
      parsed = stateFileSchema.parse(JSON.parse(text));
    } catch (cause) {
      throw new WitnessStateError('witness_state_corrupt', `the witness state ${this.file(hash)} is not a valid state file (edited outside the witness?)`, { cause });
    }
    return { origin: parsed.origin, size: parsed.size, rootHash: Buffer.from(parsed.root_hash, 'base64'), checkpoint: parsed.checkpoint, updatedAt: parsed.updated_at };
  }

  async write(state: LogState): Promise<void> {
    const target = this.file(originHash(state.origin));
    const temp = `${target}.tmp-${process.pid}-${Date.now()}`;
    const body = JSON.stringify({
      origin: state.origin,
      size: state.size,
      root_hash: state.rootHash.toString('base64'),
      checkpoint: state.checkpoint,
      updated_at: state.updatedAt,
    });
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
    const directory = await open(join(this.dir, 'logs'), 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.locks.values());
    await rm(this.pidFile, { force: true });
  }

  private file(hash: string): string {
    return join(this.dir, 'logs', `${hash}.json`);
  }
}

/**
 * One witness process per data directory: two would each serialise their own requests and could
 * roll a log back. A pid file left by a killed process is taken over; one of a live process is not.
 */
async function claim(pidFile: string): Promise<void> {
  try {
    const holder = Number((await readFile(pidFile, 'utf8')).trim());
    if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
      throw new WitnessStateError(
        'witness_data_dir_in_use',
        `another witness process (pid ${holder}) uses this data directory; stop it, or remove ${pidFile} if that pid is not a witness`,
      );
    }
  } catch (error) {
    if (error instanceof WitnessStateError) throw error;
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await writeFile(pidFile, `${process.pid}\n`, { mode: 0o600 });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
