import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTokenCli } from '../../cli/token.js';
import { ensureLocalSigningKey, LOCAL_AUDIENCE, LOCAL_ISSUER } from '../../services/reveal-api/auth/local-signing-key.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-token-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function capture() {
  const lines = { out: [] as string[], err: [] as string[] };
  return { lines, output: { out: (line: string) => lines.out.push(line), err: (line: string) => lines.err.push(line) } };
}

describe('npm run token', () => {
  it('prints only a token the local signing key verifies, with sub, roles, issuer, audience and a 15 minute default lifetime', async () => {
    const { lines, output } = capture();
    expect(await runTokenCli(['--sub', 'alice', '--roles', 'investigator, support', '--dir', dir], {}, output)).toBe(0);
    expect(lines.out).toHaveLength(1);
    const token = lines.out[0] ?? '';
    const key = await ensureLocalSigningKey(dir);
    const { payload } = await jwtVerify(token, createLocalJWKSet({ keys: [key.publicJwk] }), { issuer: LOCAL_ISSUER, audience: LOCAL_AUDIENCE, algorithms: ['ES256'] });
    expect(payload).toMatchObject({ sub: 'alice', roles: ['investigator', 'support'] });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(15 * 60);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', kid: key.kid });
  });

  it('creates the signing key once, private to its owner', async () => {
    const first = await ensureLocalSigningKey(dir);
    const again = await Promise.all([ensureLocalSigningKey(dir), ensureLocalSigningKey(dir)]);
    expect(again.map((key) => key.kid)).toEqual([first.kid, first.kid]);
    expect((await stat(join(dir, 'signing-key.pem'))).mode & 0o777).toBe(0o600);
  });

  it('agrees on one key when first started concurrently', async () => {
    const fresh = join(dir, 'concurrent');
    const keys = await Promise.all(Array.from({ length: 5 }, () => ensureLocalSigningKey(fresh)));
    expect(new Set(keys.map((key) => key.kid)).size).toBe(1);
  });

  it('refuses roles the policy does not know, naming the known ones and the nearest', async () => {
    const typo = capture();
    expect(await runTokenCli(['--sub', 'alice', '--roles', 'investigater', '--dir', dir], {}, typo.output)).toBe(2);
    expect(typo.lines.out).toEqual([]);
    const message = typo.lines.err.join('\n');
    expect(message).toContain('the policy does not know "investigater" (did you mean "investigator"?)');
    expect(message).toMatch(/known roles: .*auditor.*investigator.*privacy-officer/);
    const custom = capture();
    expect(await runTokenCli(['--sub', 'alice', '--roles', 'investigator', '--dir', dir], { POLICY_FILE: join(dir, 'missing-policy.json') }, custom.output)).toBe(1);
    expect(custom.lines.err.join('\n')).toContain('cannot read the policy (POLICY_FILE=');
    const forced = capture();
    expect(await runTokenCli(['--sub', 'mallory', '--roles', 'no-such-role', '--allow-unknown-roles', '--dir', dir], {}, forced.output)).toBe(0);
    expect(forced.lines.out).toHaveLength(1);
  });

  it('honours --ttl and rejects a missing --sub or a bad --ttl', async () => {
    const ok = capture();
    expect(await runTokenCli(['--sub', 'bob', '--roles', 'auditor', '--ttl', '1h', '--dir', dir], {}, ok.output)).toBe(0);
    const payload = JSON.parse(Buffer.from((ok.lines.out[0] ?? '').split('.')[1] ?? '', 'base64url').toString()) as { exp: number; iat: number };
    expect(payload.exp - payload.iat).toBe(3600);
    const missing = capture();
    expect(await runTokenCli(['--roles', 'auditor', '--dir', dir], {}, missing.output)).toBe(2);
    expect(missing.lines.err.join('\n')).toMatch(/--sub is required/);
    const bad = capture();
    expect(await runTokenCli(['--sub', 'bob', '--ttl', 'forever', '--dir', dir], {}, bad.output)).toBe(2);
  });

  it('runs as a script and writes just the token to stdout', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'cli/token.ts', '--sub', 'carol', '--roles', 'analyst', '--dir', dir]);
    expect(stdout.trim()).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  });
});
