import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { verifyHashChain } from '../../../../lib/audit/hash-chain-verifier.js';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE, type AuditRowView, type RevealHarness, type SeededValue, harnessSettings } from '../../../support/reveal-harness.js';

const it = revealTestFor();

// The file's shared harness, bound once for the helpers below.
let harness: RevealHarness;
let ip: SeededValue;
let keyFile: string;
const children: ChildProcess[] = [];

it.beforeAll(async ({ harness: shared, sample }) => {
  harness = shared;
  ip = sample.ip;
  keyFile = join(tmpdir(), `tokenvault-refusal-crash-${process.pid}.key`);
  await writeFile(keyFile, harness.keyringMaster, { mode: 0o600 });
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await rm(keyFile, { force: true });
});

/** The reveal-api as production runs it (main.ts, its own process), listening on a free port. */
async function startServer(): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/reveal-api/main.ts'], {
    env: {
      PATH: process.env.PATH,
      ...harnessSettings(harness, keyFile),
      PORT: '0',
      // Two requests per caller and hour: everything after is refused, all in one window that never closes here.
      RATE_LIMIT_MAX: '2',
      RATE_LIMIT_WINDOW: '1h',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const address = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    child.once('exit', () => reject(new Error(`reveal-api exited early:\n${output}`)));
  });
  return { child, address };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const storedRefusals = async () =>
  Number((await harness.testDb.owner.pool.query<{ refusals: string | null }>('SELECT sum(refusals) AS refusals FROM refusal_windows')).rows[0]?.refusals ?? 0);

const rowsOf = async (actor: string): Promise<AuditRowView[]> => (await auditRows(harness.testDb)).filter((row) => row.actor === actor);

async function killed(child: ChildProcess): Promise<void> {
  const exit = once(child, 'exit');
  child.kill('SIGKILL');
  const [, signal] = (await exit) as [number | null, string | null];
  expect(signal).toBe('SIGKILL');
}

describe('refusal accounting through a kill -9 (finding 10)', { timeout: 240_000 }, () => {
  it('keeps the first refusal of the window and every refusal counted before the last flush: another replica summarises them', async () => {
    const { child, address } = await startServer();
    const headers = { ...bearer(await harness.token('hammer', ['investigator'])), 'content-type': 'application/json' };
    const body = JSON.stringify({ tokens: [ip.token], purpose: PURPOSE });
    const statuses: number[] = [];
    for (let index = 0; index < 90; index += 1) statuses.push((await fetch(`${address}/reveal`, { method: 'POST', headers, body })).status);
    expect(statuses.filter((status) => status === 429)).toHaveLength(88);
    // The first refusal's row was committed before it was answered.
    expect((await rowsOf('hammer')).map((row) => row.outcome)).toEqual(['allowed', 'allowed', 'rate_limited']);
    // The other 87 are stored within a second (no timing assumed: wait for the count to be there), then the process dies.
    await until('the refusal count to be stored', async () => ((await storedRefusals()) === 87 ? true : undefined));
    await killed(child);

    // Any replica (here one started after the crash) writes the summary of what the dead one stored, once it is stale.
    const survivor = await harness.buildApp();
    const rows = await until('the recovered summary row', async () => {
      const found = await rowsOf('hammer');
      return found.length === 4 ? found : undefined;
    });
    await survivor.close();
    expect(rows[3]?.reason).toMatch(/^rate_limited repeated=87 from=\S+ to=\S+ recovered \(summary: /);
    expect(rows[3]?.request_id).toBe(rows[2]?.request_id);
    expect(await storedRefusals()).toBe(0);
    expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);
  });

  it('loses at most what was answered after the last flush when killed in the middle of a flood, and never the first refusal', async () => {
    const { child, address } = await startServer();
    const headers = { ...bearer(await harness.token('storm', ['investigator'])), 'content-type': 'application/json' };
    const body = JSON.stringify({ tokens: [ip.token], purpose: PURPOSE });
    let refused = 0;
    let stop = false;
    // Four callers-in-a-loop keep the server refusing while it is killed.
    const loops = Array.from({ length: 4 }, async () => {
      while (!stop) {
        try {
          const response = await fetch(`${address}/reveal`, { method: 'POST', headers, body });
          if (response.status === 429) refused += 1;
        } catch {
          return; // the server is gone
        }
      }
    });
    const storedBeforeKill = await until('some refusals to be stored', async () => {
      const stored = await storedRefusals();
      return stored >= 20 ? stored : undefined;
    });
    await killed(child);
    stop = true;
    await Promise.all(loops);

    const survivor = await harness.buildApp();
    const rows = await until('the recovered summary row', async () => {
      const found = (await rowsOf('storm')).filter((row) => row.outcome === 'rate_limited');
      return found.length === 2 ? found : undefined;
    });
    await survivor.close();
    expect(rows[0]?.reason).toBe('rate_limited');
    const recovered = Number(/repeated=(\d+)/.exec(rows[1]?.reason ?? '')?.[1]);
    // Everything stored is on record; nothing is counted that was not refused (the first has its own row; up to
    // four refusals, one per loop, can be counted and stored but die with the process before their answer arrives).
    expect(recovered).toBeGreaterThanOrEqual(storedBeforeKill);
    expect(recovered).toBeLessThanOrEqual(refused - 1 + 4);
    expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);
  });
});
