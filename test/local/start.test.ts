import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readlink, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../local/free-port.js';
import { isRunning, processTree } from '../support/process-tree.js';
import { ROOT } from '../support/processes.js';

/**
 * `npm start` as a user runs it: the real npm process, its shell and node, embedded PostgreSQL
 * and the SQS server, in a process group of its own so a Ctrl-C can be sent to the group the way
 * a terminal does. The data directory sits in a private (0700) directory.
 */
interface Run {
  npm: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

const privateDirs: string[] = [];
const runs: Run[] = [];
afterAll(async () => {
  for (const run of runs) if (run.npm.exitCode === null && run.npm.pid !== undefined) process.kill(-run.npm.pid, 'SIGKILL');
  await Promise.all(privateDirs.map(removeStack));
});

/** As root the cluster of a data directory in a 0700 directory lives in the temp directory, behind data/postgres. */
async function removeStack(privateDir: string): Promise<void> {
  const relocated = await readlink(join(privateDir, 'data', 'postgres')).catch(() => undefined);
  if (relocated !== undefined) await rm(relocated, { recursive: true, force: true });
  await rm(privateDir, { recursive: true, force: true });
}

async function stackEnv(dataDir: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  // Five different ports: the OS may hand out a port it just released again.
  const ports = new Set<number>();
  while (ports.size < 5) ports.add(await freePort());
  const [postgres, sqs, api, metrics, witness] = [...ports].map(String) as [string, string, string, string, string];
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    TOKENVAULT_DATA_DIR: dataDir,
    LOCAL_POSTGRES_PORT: postgres,
    LOCAL_SQS_PORT: sqs,
    PORT: api,
    METRICS_PORT: metrics,
    LOCAL_WITNESS_PORT: witness,
    INGESTOR_POLLERS: '2',
    ...extra,
  };
}

function npmStart(env: Record<string, string>): Run {
  const npm = spawn('npm', ['start'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  npm.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  npm.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => npm.on('close', (code) => resolve(code)));
  const run = { npm, output: () => output, exited };
  runs.push(run);
  return run;
}

async function until(run: Run, text: string, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!run.output().includes(text)) {
    if (run.npm.exitCode !== null) throw new Error(`npm start exited (${run.npm.exitCode}) before "${text}":\n${run.output()}`);
    if (Date.now() > deadline) throw new Error(`no "${text}" after ${timeoutMs} ms:\n${run.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Sends the signal, waits for npm, and checks that every process it had started is gone and every port is free. */
async function stopAndCheck(run: Run, env: Record<string, string>, how: 'Ctrl-C' | 'SIGTERM to npm'): Promise<void> {
  const pid = run.npm.pid ?? 0;
  const tree = processTree(pid);
  expect(tree.length, 'npm, node, the witness and PostgreSQL processes').toBeGreaterThanOrEqual(4);
  if (how === 'Ctrl-C') process.kill(-pid, 'SIGINT');
  else process.kill(pid, 'SIGTERM');
  expect(await run.exited, run.output()).toBe(0);
  const deadline = Date.now() + 10_000;
  while (tree.some(isRunning) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  expect(tree.filter(isRunning), 'processes still running').toEqual([]);
  for (const name of ['LOCAL_POSTGRES_PORT', 'LOCAL_SQS_PORT', 'PORT', 'METRICS_PORT', 'LOCAL_WITNESS_PORT']) expect(await portIsFree(Number(env[name])), name).toBe(true);
  expect(run.output()).toContain('stopped.');
  expect(run.output()).not.toMatch(/second SIG|exiting|unexpected error/);
}

describe('npm start', () => {
  it('one Ctrl-C or one SIGTERM to npm drains and stops everything; a second start in the same directory names the first', async () => {
    const privateDir = await mkdtemp(join(tmpdir(), 'tokenvault-test-start-'));
    privateDirs.push(privateDir);
    const dataDir = join(privateDir, 'data');

    const envFirst = await stackEnv(dataDir);
    const first = npmStart(envFirst);
    await until(first, 'Running. Ctrl-C to stop.');
    expect(first.output()).toContain('loaded 100 reference messages');
    expect(first.output()).toMatch(/database holds 99 rows in user_logins, 1 in quarantine/);

    const second = npmStart(await stackEnv(dataDir));
    expect(await second.exited).toBe(1);
    const nodePid = processTree(first.npm.pid ?? 0).find((pid) => pid !== first.npm.pid);
    expect(second.output()).toContain(`already running from this directory (pid ${nodePid})`);
    expect(second.output()).not.toMatch(/LOCAL_POSTGRES_PORT|\n\s+at /);
    await stopAndCheck(first, envFirst, 'Ctrl-C');

    for (const how of ['SIGTERM to npm', 'Ctrl-C', 'SIGTERM to npm'] as const) {
      const env = await stackEnv(dataDir);
      const run = npmStart(env);
      await until(run, 'Running. Ctrl-C to stop.');
      // The database holds the reference data: nothing is loaded twice.
      expect(run.output()).not.toContain('reference messages');
      expect(run.output()).toMatch(/database holds 99 rows in user_logins, 1 in quarantine/);
      await stopAndCheck(run, env, how);
    }
  }, 900_000);

  it('takes the reference data back when the database was deleted, and verifies tokens with the JWT_SECRET the user set', async () => {
    const privateDir = await mkdtemp(join(tmpdir(), 'tokenvault-test-start-'));
    privateDirs.push(privateDir);
    const dataDir = join(privateDir, 'data');
    const secret = 'a-local-shared-secret-of-at-least-32-characters';

    const env = await stackEnv(dataDir, { JWT_SECRET: secret });
    const run = npmStart(env);
    await until(run, 'Running. Ctrl-C to stop.');
    expect(run.output()).toContain('tokens signed by your JWT_SECRET');
    const jwt = await new SignJWT({ roles: ['auditor'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('carol')
      .setIssuer('tokenvault-local')
      .setAudience('tokenvault-reveal-api')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(secret));
    const response = await fetch(`http://127.0.0.1:${env.PORT}/audit?limit=1`, { headers: { authorization: `Bearer ${jwt}` } });
    expect(response.status).toBe(200);
    await stopAndCheck(run, env, 'Ctrl-C');

    // Only the data directory (as root in a 0700 directory: the link to the cluster), as a user would.
    await rm(join(dataDir, 'postgres'), { recursive: true, force: true });
    const envAgain = await stackEnv(dataDir);
    const again = npmStart(envAgain);
    await until(again, 'Running. Ctrl-C to stop.');
    expect(again.output()).toContain('loaded 100 reference messages');
    expect(again.output()).toMatch(/database holds 99 rows in user_logins, 1 in quarantine/);
    await stopAndCheck(again, envAgain, 'SIGTERM to npm');
  }, 600_000);

  it('refuses two JWT key sources at once, naming both', async () => {
    const privateDir = await mkdtemp(join(tmpdir(), 'tokenvault-test-start-'));
    privateDirs.push(privateDir);
    const run = npmStart(await stackEnv(join(privateDir, 'data'), { JWT_SECRET: 'x'.repeat(40), JWT_JWKS_URL: 'https://idp.example.com/jwks.json' }));
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/JWT_JWKS_URL and JWT_SECRET are set together/);
    expect(run.output()).not.toMatch(/\n\s+at /);
  }, 120_000);
});
