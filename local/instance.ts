import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlive } from './embedded-postgres.js';

/** What a running `npm start` publishes in its data directory for the CLIs (audit:verify) and a second start. */
export interface LocalStackState {
  pid: number;
  /** Owner URL of the embedded database (local development credentials), when embedded. */
  databaseUrl?: string;
  revealUrl?: string;
}

const FILE = 'local-stack.json';

export function stateFile(dataDir: string): string {
  return join(dataDir, FILE);
}

/** `npm start` already runs from this data directory. */
export class AlreadyRunningError extends Error {
  constructor(readonly pid: number) {
    super(`already running from this directory (pid ${pid}): stop it first (Ctrl-C in its terminal, or kill ${pid})`);
  }
}

/** The state of a live `npm start` on this data directory, or undefined (none, or it died without cleaning up). */
export async function runningLocalStack(dataDir: string): Promise<LocalStackState | undefined> {
  const state = await readFile(stateFile(dataDir), 'utf8')
    .then((text) => JSON.parse(text) as LocalStackState)
    .catch(() => undefined);
  return state !== undefined && Number.isInteger(state.pid) && state.pid !== process.pid && isAlive(state.pid) ? state : undefined;
}

/**
 * Claims the data directory for this process: fails with the other pid when a live `npm start`
 * holds it; a file left by a killed run is taken over. The file is 0600 (it holds the local URL).
 */
export async function claimDataDir(dataDir: string): Promise<{ publish(state: Omit<LocalStackState, 'pid'>): Promise<void>; release(): Promise<void> }> {
  const running = await runningLocalStack(dataDir);
  if (running !== undefined) throw new AlreadyRunningError(running.pid);
  const write = (state: LocalStackState) => writeFile(stateFile(dataDir), `${JSON.stringify(state)}\n`, { mode: 0o600 });
  await write({ pid: process.pid });
  return {
    publish: (state) => write({ ...state, pid: process.pid }),
    release: async () => {
      // Only our own claim: a second start that lost the race must not delete the winner's file.
      const current = await readFile(stateFile(dataDir), 'utf8').catch(() => '');
      if (current.includes(`"pid":${process.pid}`)) await rm(stateFile(dataDir), { force: true });
    },
  };
}
