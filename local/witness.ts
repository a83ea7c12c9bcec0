import { spawn, type ChildProcess } from 'node:child_process';
import type { Env } from '../lib/config/env.js';
import { WITNESS_MAIN } from '../services/witness/index.js';

export interface LocalWitness {
  url: string;
  /** Its cosignature vkey (what the checkpointer and auditors verify cosignatures with). */
  vkey: string;
  dataDir: string;
  stop(): Promise<void>;
}

export interface LocalWitnessOptions {
  port: number;
  dataDir: string;
  /** The vkeys of the log it follows (their name is the origin). */
  logKeys: string[];
  logLevel: string;
  /** The stack's environment (PATH and HOME are passed on; nothing else). */
  env: Env;
  /** How long to wait for it to answer /healthz. */
  timeoutMs?: number;
}

export class WitnessStartError extends Error {}

/**
 * `npm start`'s second party: the witness (`npm run witness`) in its own process, with its own
 * data directory and key, following the local log's keys. It leaves when its parent does, even
 * after a kill -9 (its IPC channel closes), so it never outlives the stack that started it.
 */
export async function startLocalWitness(options: LocalWitnessOptions): Promise<LocalWitness> {
  const child = spawn(process.execPath, [...process.execArgv, WITNESS_MAIN], {
    env: {
      PATH: options.env.PATH ?? '',
      HOME: options.env.HOME ?? '/tmp',
      WITNESS_HOST: '127.0.0.1',
      WITNESS_PORT: String(options.port),
      WITNESS_DATA_DIR: options.dataDir,
      WITNESS_LOG_KEYS: options.logKeys.join(','),
      LOG_LEVEL: options.logLevel,
    },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = `${stderr}${chunk.toString()}`.slice(-4000);
    process.stderr.write(chunk);
  });
  const url = `http://127.0.0.1:${options.port}`;
  try {
    const vkey = await waitForWitness(child, url, options.timeoutMs ?? 30_000, () => stderr);
    return { url, vkey, dataDir: options.dataDir, stop: () => stop(child) };
  } catch (error) {
    await stop(child);
    throw error;
  }
}

async function waitForWitness(child: ChildProcess, url: string, timeoutMs: number, stderr: () => string): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  child.once('exit', () => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new WitnessStartError(`the witness exited at start: ${lastLine(stderr())}`);
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) {
        const body = (await response.json()) as { witness?: string };
        if (typeof body.witness === 'string') return body.witness;
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new WitnessStartError(`the witness did not answer on ${url} within ${timeoutMs / 1000} s (LOCAL_WITNESS_PORT)`);
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  const last = lines.at(-1) ?? '';
  try {
    return (JSON.parse(last) as { msg?: string; err?: { message?: string } }).err?.message ?? last;
  } catch {
    return last || 'no output';
  }
}
