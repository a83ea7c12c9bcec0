import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../local/free-port.js';
import { nodeRuntime } from '../../lib/config/node-runtime.js';
import { networkTestsEnabled, startNetworkPeer } from '../support/netns.js';
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

/** A port held by another program for the length of a test. */
async function occupy(port: number): Promise<() => Promise<void>> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}

/** On a supported Node.js nothing warns about the version; on an older one, one line of ours says so (the SDK's is silenced). */
function expectVersionNotice(output: string): void {
  if (nodeRuntime().supported) {
    expect(output).not.toMatch(/NodeVersionSupportWarning|Unsupported runtime|is not supported|Warning:/);
  } else {
    expect(output.match(/is not supported \(end of life\): tokenvault supports Node\.js 22 and 24/g)).toHaveLength(1);
    expect(output).not.toMatch(/NodeVersionSupportWarning/);
  }
}

/**
 * Every kind of line npm start prints has its counterpart in the README's sample output: a
 * labelled line by its label, a continuation line by its first words.
 */
async function expectReadmeSampleComplete(output: string): Promise<void> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const sample = /```\n(tokenvault local stack\n[\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const kinds = (text: string) =>
    new Set(
      text
        .split('\n')
        .map((line) => /^ {2}([a-z][a-z-]+) {2,}/.exec(line)?.[1] ?? /^ {16}(\S+ \S+)/.exec(line)?.[1])
        .filter((kind): kind is string => kind !== undefined && kind !== 'node'),
    );
  const printed = kinds(output.slice(output.indexOf('tokenvault local stack'), output.indexOf('Running. Ctrl-C')));
  expect([...printed].filter((kind) => !kinds(sample).has(kind))).toEqual([]);
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
    // The embedded SQS server cannot persist its queue: the start says so.
    expect(first.output()).toContain('in memory only: messages still queued when npm start stops (Ctrl-C or kill) are lost; set SQS_QUEUE_URL for a durable queue');
    expectVersionNotice(first.output());
    await expectReadmeSampleComplete(first.output());

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

  it('names the setting of every port another program holds (PORT, METRICS_PORT, LOCAL_SQS_PORT), before starting anything', async () => {
    const privateDir = await mkdtemp(join(tmpdir(), 'tokenvault-test-start-'));
    privateDirs.push(privateDir);
    const env = await stackEnv(join(privateDir, 'data'));
    const release = await occupy(Number(env.PORT));
    try {
      const one = npmStart(env);
      expect(await one.exited).toBe(1);
      expect(one.output()).toContain(`cannot start: port ${env.PORT} is in use by another program: set PORT to a free port`);
      expect(one.output()).not.toMatch(/EADDRINUSE|\n\s+at |database /);
      const releaseOthers = [await occupy(Number(env.METRICS_PORT)), await occupy(Number(env.LOCAL_SQS_PORT))];
      try {
        const three = npmStart(env);
        expect(await three.exited).toBe(1);
        expect(three.output()).toContain(`cannot start: ports ${env.PORT} (PORT), ${env.METRICS_PORT} (METRICS_PORT), ${env.LOCAL_SQS_PORT} (LOCAL_SQS_PORT) are in use by other programs`);
        expect(three.output()).not.toMatch(/\n\s+at /);
      } finally {
        for (const free of releaseOthers) await free();
      }
    } finally {
      await release();
    }
  }, 120_000);

  it('says that an exported DATABASE_URL replaces the embedded PostgreSQL, and how to get it back', async () => {
    const privateDir = await mkdtemp(join(tmpdir(), 'tokenvault-test-start-'));
    privateDirs.push(privateDir);
    // The URL an earlier npm start printed; nothing listens there now.
    const stale = `postgres://postgres:tokenvault-local@127.0.0.1:${await freePort()}/tokenvault`;
    const run = npmStart(await stackEnv(join(privateDir, 'data'), { DATABASE_URL: stale }));
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/cannot start: cannot reach the database at 127\.0\.0\.1:\d+\/tokenvault: connection refused/);
    expect(run.output()).toContain('DATABASE_URL is set, so npm start uses that database instead of starting its embedded PostgreSQL');
    expect(run.output()).toContain('unset DATABASE_URL');
    expect(run.output()).not.toContain('tokenvault-local@');
  }, 120_000);

  it('stops at a policy typo with "cannot start:", the setting and a did-you-mean', async () => {
    const privateDir = await mkdtemp(join(tmpdir(), 'tokenvault-test-start-'));
    privateDirs.push(privateDir);
    const policy = join(privateDir, 'policy.json');
    const document = JSON.parse(await readFile(join(ROOT, 'services/reveal-api/policy.default.json'), 'utf8')) as { roles: Record<string, { budget?: Record<string, number> }> };
    const budget = document.roles.investigator?.budget ?? {};
    budget.per_huor = budget.per_hour ?? 1000;
    delete budget.per_hour;
    await writeFile(policy, JSON.stringify(document));
    const run = npmStart(await stackEnv(join(privateDir, 'data'), { POLICY_FILE: policy }));
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/^cannot start: POLICY_FILE .*policy\.json is invalid:$/m);
    expect(run.output()).toContain('roles.investigator.budget: unknown field: per_huor (did you mean per_hour?)');
    expect(run.output()).not.toMatch(/\n\s+at |database /);
  }, 120_000);

  const network = networkTestsEnabled('npm start with HOST=0.0.0.0, reached from another address (test/local/start.test.ts)');
  it.skipIf(!network)('with a HOST the network can reach, has no local sign-in, says so in one line with how to sign in instead, and refuses it from another machine', async () => {
    const peer = await startNetworkPeer();
    const privateDir = await mkdtemp(join(tmpdir(), 'tokenvault-test-start-'));
    privateDirs.push(privateDir);
    const env = await stackEnv(join(privateDir, 'data'), { HOST: '0.0.0.0' });
    const run = npmStart(env);
    try {
      await until(run, 'Running. Ctrl-C to stop.');
      const lines = run.output().split('\n').filter((line) => line.includes('local sign-in'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^ {2}console {7}http:\/\/0\.0\.0\.0:\d+\/console\/ {2}\(local sign-in off: HOST=0\.0\.0\.0 is reachable from the network/);
      expect(lines[0]).toContain('CONSOLE_OIDC_ISSUER');
      expect(lines[0]).toContain(`ssh -L ${env.PORT}:127.0.0.1:${env.PORT}`);
      const url = `http://${peer.hostAddress}:${env.PORT}`;
      // What the issue did: from another address, ask for an investigator's token.
      expect((await peer.request(`${url}/healthz`)).status).toBe(200);
      const signIn = await peer.request(`${url}/console/local-sign-in`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ role: 'investigator' }),
      });
      expect(signIn.status).toBe(404);
      expect(signIn.body).not.toMatch(/eyJ/);
      expect(JSON.parse((await peer.request(`${url}/console/settings.json`)).body)).toMatchObject({ local_sign_in: null });
      // Not even on this machine: the listener is not a loopback one.
      const here = await fetch(`http://127.0.0.1:${env.PORT}/console/local-sign-in`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ role: 'investigator' }),
      });
      expect(here.status).toBe(404);
      await stopAndCheck(run, env, 'Ctrl-C');
    } finally {
      await peer.close();
    }
  }, 600_000);
});
