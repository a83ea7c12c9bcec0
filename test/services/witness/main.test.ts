import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseVerifierKey } from '../../../lib/audit/note/vkey.js';
import { submitCheckpoint, type WitnessEndpoint } from '../../../lib/audit/witness-client.js';
import { originHash } from '../../../services/witness/state-store.js';
import { TestLog } from '../../support/witness-harness.js';

let dir: string;
const children: ChildProcess[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-witness-main-'));
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

interface Running {
  child: ChildProcess;
  url: string;
  output: () => string;
}

async function startMain(env: Record<string, string>): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/witness/main.ts'], {
    env: { PATH: process.env.PATH, WITNESS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    child.once('exit', () => reject(new Error(`witness exited early:\n${output}`)));
  });
  return { child, url, output: () => output };
}

async function killHard(running: Running): Promise<void> {
  const exited = once(running.child, 'exit');
  running.child.kill('SIGKILL');
  await exited;
}

// Spawns tsx processes: on a busy two-core machine start-up alone can take several seconds.
describe('npm run witness (its own process, data directory and key)', { timeout: 180_000 }, () => {
  it('creates its key 0600 once, keeps acknowledged state through kill -9 at any moment, and resumes after restart', async () => {
    const log = new TestLog('main.test/log').append(3);
    const dataDir = join(dir, 'witness');
    const env = { WITNESS_DATA_DIR: dataDir, WITNESS_LOG_KEYS: log.signer.verifierKey, WITNESS_NAME: 'main.test/witness' };
    const stateFile = join(dataDir, 'logs', `${originHash(log.origin)}.json`);
    const proofs = async (from: number) => log.tree.consistencyProof(from);

    let running = await startMain(env);
    const keyFile = join(dataDir, 'witness-key.pem');
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const vkey = (await readFile(`${keyFile}.vkey`, 'utf8')).trim();
    const endpoint = (url: string): WitnessEndpoint => ({ url, verifier: parseVerifierKey(vkey) });
    let acked = 0;

    for (let cycle = 0; cycle < 3; cycle += 1) {
      // A stream of extensions, one at a time as a checkpointer sends them; kill -9 lands while one is in flight.
      let stop = false;
      const stream = (async () => {
        while (!stop) {
          log.append(1 + (log.tree.size % 3));
          try {
            const cosignature = await submitCheckpoint(endpoint(running.url), await log.checkpoint(), acked, proofs, { timeoutMs: 5_000 });
            expect(cosignature.oldSize).toBe(acked);
            acked = log.tree.size;
          } catch (error) {
            if (!stop) throw error;
          }
        }
      })();
      // Wait for a few acknowledgements (a condition, not a delay), then kill in the middle of the stream.
      let streamFailed = false;
      stream.catch(() => (streamFailed = true));
      const target = acked + 6 + cycle * 3;
      while (acked < target && !streamFailed) await new Promise((resolve) => setImmediate(resolve));
      // The request in flight (if any) is interrupted; no new one starts.
      stop = true;
      await killHard(running);
      await stream;

      // Never torn, never behind an acknowledgement, always a tree the log really signed.
      const state = JSON.parse(await readFile(stateFile, 'utf8')) as { size: number; root_hash: string; checkpoint: string };
      expect(state.size).toBeGreaterThanOrEqual(acked);
      expect(state.size).toBeLessThanOrEqual(log.tree.size);
      expect(state.root_hash).toBe(log.tree.root(state.size).toString('base64'));
      expect(state.checkpoint).toContain('— main.test/witness ');

      running = await startMain(env);
      // Same key after restart.
      expect(((await (await fetch(`${running.url}/healthz`)).json()) as { witness: string }).witness).toBe(vkey);
      // The client resynchronises from whatever the witness kept (409), and the log goes on.
      log.append(2);
      const resumed = await submitCheckpoint(endpoint(running.url), await log.checkpoint(), acked, proofs);
      expect(resumed.oldSize).toBe(state.size);
      acked = log.tree.size;
    }
    expect((await readdir(join(dataDir, 'logs'))).filter((name) => name.includes('.tmp-'))).toEqual([]);
    running.child.kill('SIGTERM');
    const [code] = (await once(running.child, 'exit')) as [number | null];
    expect(code).toBe(0);
    await expect(stat(join(dataDir, 'witness.pid'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('exits non-zero naming the missing setting when no log key is configured', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/witness/main.ts'], {
      env: { PATH: process.env.PATH, WITNESS_DATA_DIR: join(dir, 'unused') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(stderr).toMatch(/WITNESS_LOG_KEYS/);
  });
});
