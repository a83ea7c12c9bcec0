import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { rolesForLogin } from '../../local/dev-identity-provider/config.js';
import { freePort } from '../../local/free-port.js';
import { ROOT } from '../support/processes.js';
import { startRevealHarness, type RevealHarness } from '../support/reveal-harness.js';

/**
 * docker compose's development OpenID provider (service idp), run as the process its image runs,
 * with the compose file's settings on a free loopback port: the reveal-api, configured with the
 * compose file's JWT settings, accepts its tokens. (The browser tests sign in through it.)
 */
type Service = { environment: Record<string, string> };
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const idpEnv = compose.services.idp?.environment ?? {};
const revealEnv = compose.services['reveal-api']?.environment ?? {};

let idp: ChildProcess;
let issuer: string;
let harness: RevealHarness;
let output = '';

beforeAll(async () => {
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  idp = spawn(process.execPath, ['--import', 'tsx', 'local/dev-identity-provider/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...idpEnv, DEV_IDP_HOST: '127.0.0.1', DEV_IDP_PORT: String(port), DEV_IDP_ISSUER: issuer },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  idp.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  idp.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 60_000;
  while (!output.includes('development OpenID provider')) {
    if (idp.exitCode !== null || Date.now() > deadline) throw new Error(`the provider did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // The reveal-api as compose configures it, with the provider's addresses of this test.
  const at = (url: string) => url.replace(/^http:\/\/(idp|localhost):\d+/, issuer);
  harness = await startRevealHarness({
    JWT_JWKS_URL: at(revealEnv.JWT_JWKS_URL ?? ''),
    JWT_ISSUER: at(revealEnv.JWT_ISSUER ?? ''),
    JWT_AUDIENCE: revealEnv.JWT_AUDIENCE ?? '',
  });
}, 120_000);

afterAll(async () => {
  idp?.kill('SIGTERM');
  await harness?.close();
});

describe('development OpenID provider (docker compose service idp)', () => {
  it('publishes discovery for its issuer, says how to sign in, and answers its health check', async () => {
    const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as { issuer: string; code_challenge_methods_supported: string[] };
    expect(discovery.issuer).toBe(issuer);
    expect(discovery.code_challenge_methods_supported).toContain('S256');
    expect((await fetch(`${issuer}/healthz`)).status).toBe(200);
    expect(output).toContain('NOT FOR PRODUCTION');
    expect(output).toContain(`curl -s -X POST ${issuer}/dev/token -d sub=alice -d roles=investigator`);
  });

  it('issues tokens (the README\'s curl) that the reveal-api, configured as in compose, accepts with their roles', async () => {
    const response = await fetch(`${issuer}/dev/token`, { method: 'POST', body: new URLSearchParams({ sub: 'alice', roles: 'investigator' }) });
    expect(response.status).toBe(200);
    const token = (await response.text()).trim();
    const me = await harness.app.inject({ url: '/me', headers: { authorization: `Bearer ${token}` } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ subject: 'alice', roles: ['investigator'] });
    // A login name gives its role: name.role for a second person with the same role.
    // As curl -d sends it (form-encoded, unescaped).
    const olga = (await (await fetch(`${issuer}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'sub=olga.approver' })).text()).trim();
    expect((await harness.app.inject({ url: '/me', headers: { authorization: `Bearer ${olga}` } })).json()).toMatchObject({ subject: 'olga.approver', roles: ['approver'] });
  });

  it('maps login names to the policy\'s roles', () => {
    const known = ['investigator', 'approver', 'auditor'];
    expect(rolesForLogin('auditor', known)).toEqual(['auditor']);
    expect(rolesForLogin('olga.approver', known)).toEqual(['approver']);
    expect(rolesForLogin('olga.smith', known)).toEqual([]);
    expect(rolesForLogin('root', known)).toEqual([]);
  });
});
