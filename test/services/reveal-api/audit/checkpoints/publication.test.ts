import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { parseExportLine } from '../../../../../lib/audit/export-format.js';
import { ROOT } from '../../../../support/processes.js';
import { revealTestFor } from '../../../../support/reveal-fixture.js';
import { bearer, PURPOSE, type RevealHarness, type SeededValue, harnessSettings } from '../../../../support/reveal-harness.js';

/**
 * Issue 17 finding 3 as the issue reproduced it, with the real service: the reveal-api as its
 * own process (services/reveal-api/main.ts, checkpoints every second to a file), the file sink
 * made unwritable for a while, the process killed with SIGKILL while checkpoints wait for the sink,
 * the sink restored, the process started again: the published file must hold every index.
 */
const it = revealTestFor();

// The file's shared harness, bound once for the helpers below.
let harness: RevealHarness;
let ip: SeededValue;
let dir: string;
let file: string;
const children: ChildProcess[] = [];

it.beforeAll(async ({ harness: shared, sample }) => {
  harness = shared;
  ip = sample.ip;
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-publication-'));
  file = join(dir, 'published', 'checkpoints.jsonl');
  await writeFile(join(dir, 'master.key'), harness.keyringMaster, { mode: 0o600 });
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

interface Service {
  child: ChildProcess;
  url: string;
}

async function startService(): Promise<Service> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/reveal-api/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      ...harnessSettings(harness, join(dir, 'master.key')),
      PORT: '0',
      LOG_LEVEL: 'info',
      RATE_LIMIT_MAX: '100000',
      CONSOLE_ENABLED: 'false',
      AUDIT_SIGNING_KEY_FILE: join(dir, 'signing-key.pem'),
      AUDIT_ED25519_KEY_FILE: join(dir, 'ed25519-key.pem'),
      AUDIT_CHECKPOINT_FILE: file,
      AUDIT_CHECKPOINT_INTERVAL_SECONDS: '1',
      AUDIT_CHECKPOINT_LOG: 'false',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match?.[1] !== undefined) resolve(match[1]);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`reveal-api exited (${code}) before listening:\n${output.slice(-3000)}`)));
  });
  return { child, url };
}

async function publishedIndexes(): Promise<number[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line, index) => parseExportLine(line, index + 1))
    .flatMap((line) => (line.type === 'checkpoint' ? [line.record.index] : []));
}

async function storedIndexes(): Promise<number[]> {
  const { rows } = await harness.testDb.owner.pool.query<{ idx: string }>('SELECT idx FROM audit_checkpoints ORDER BY idx');
  return rows.map((row) => Number(row.idx));
}

/** Reveals keep coming (the log moves), so every second's round has something to sign. */
function keepRevealing(service: Service): () => Promise<void> {
  let stop = false;
  const loop = (async () => {
    const headers = { ...bearer(await harness.token('alice', ['investigator'])), 'content-type': 'application/json' };
    while (!stop) {
      await fetch(`${service.url}/reveal`, { method: 'POST', headers, body: JSON.stringify({ tokens: [ip.token], purpose: PURPOSE }) }).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return async () => {
    stop = true;
    await loop;
  };
}

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('publication catches up (issue 17 finding 3)', { timeout: 300_000 }, () => {
  it('a sink outage followed by kill -9 and a restart leaves no gap in the published sequence', async () => {
    let service = await startService();
    let stopRevealing = keepRevealing(service);
    await until(async () => (await publishedIndexes()).length >= 2, 'two published checkpoints');

    // The sink becomes unwritable (and unreadable): its path is a directory for a while.
    await rename(file, `${file}.saved`);
    await mkdir(file);
    const before = (await storedIndexes()).length;
    // Checkpoints go on being signed and stored while the sink is down …
    await until(async () => (await storedIndexes()).length >= before + 3, 'three checkpoints stored while the sink is down');
    // … and the process dies with them unpublished.
    await stopRevealing();
    const exited = once(service.child, 'exit');
    service.child.kill('SIGKILL');
    await exited;
    const stored = await storedIndexes();
    await rmdir(file);
    await rename(`${file}.saved`, file);
    const beforeRestart = await publishedIndexes();
    expect(beforeRestart.at(-1)).toBeLessThan(stored.at(-1)!);

    // The restart publishes what was stored but not published, then goes on.
    service = await startService();
    stopRevealing = keepRevealing(service);
    await until(async () => {
      const published = await publishedIndexes();
      return published.length > stored.length + 1;
    }, 'the restarted service to publish past the checkpoints stored before the kill');
    await stopRevealing();
    const published = await publishedIndexes();
    expect(published).toEqual(Array.from({ length: published.length }, (_, position) => position + 1));
    expect((await storedIndexes()).slice(0, published.length)).toEqual(published);
    service.child.kill('SIGTERM');
    await once(service.child, 'exit');
  });
});
