import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { revealTestFor } from '../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE, harnessSettings } from '../../support/reveal-harness.js';

const it = revealTestFor();

// Spawns tsx processes: on a busy two-core machine start-up alone can take most of the default 30 s.
describe('reveal-api main', { timeout: 120_000 }, () => {
  it('listens with the configuration from the environment and closes gracefully on SIGTERM', async ({ harness, sample: { ip } }) => {
    // The same master key the harness sealed the vault with.
    const keyFile = join(tmpdir(), `tokenvault-main-test-${process.pid}.key`);
    await writeFile(keyFile, harness.keyringMaster, { mode: 0o600 });
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/reveal-api/main.ts'], {
      env: {
        PATH: process.env.PATH,
        ...harnessSettings(harness, keyFile),
        PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const address = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (match?.[1] !== undefined) resolve(match[1]);
      });
      child.once('exit', () => reject(new Error(`main exited early:\n${output}`)));
    });
    const response = await fetch(`${address}/reveal`, {
      method: 'POST',
      headers: { ...bearer(await harness.token('alice', ['investigator'])), 'content-type': 'application/json' },
      body: JSON.stringify({ tokens: [ip.token], purpose: PURPOSE }),
    });
    expect(await response.json()).toEqual({ results: [{ token: ip.token, field: 'ip', value: ip.value, redaction: 'none' }], audit_seq: expect.any(Number) });
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(output).not.toContain(ip.value);
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ actor: 'alice', outcome: 'allowed' });
    await rm(keyFile, { force: true });
  });

  it('exits non-zero naming the missing setting', async ({ harness }) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/reveal-api/main.ts'], {
      env: { PATH: process.env.PATH, DATABASE_URL: harness.testDb.url, LOCAL_MASTER_KEY_FILE: '/tmp/x.key', JWT_ISSUER: 'i', JWT_AUDIENCE: 'a' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(stderr).toMatch(/JWT_JWKS_URL/);
  });

  it('refuses to start with the console\'s local sign-in turned on (containers run this main)', async ({ harness }) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/reveal-api/main.ts'], {
      env: {
        PATH: process.env.PATH,
        ...harnessSettings(harness, '/tmp/x.key'),
        CONSOLE_LOCAL_SIGN_IN: 'true',
        PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(stderr).toContain('CONSOLE_LOCAL_SIGN_IN: local sign-in mints tokens for any role and exists only in the local stack');
  });
});
