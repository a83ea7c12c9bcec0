import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import type { RevealApp } from '../../../../services/reveal-api/app.js';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { bearer, PURPOSE, type RevealHarness, type SeededValue } from '../../../support/reveal-harness.js';

const it = revealTestFor();

// The file's shared harness and its app serving a stand-in build, bound once.
let harness: RevealHarness;
let consoleDir: string;
let app: RevealApp;
let ip: SeededValue;

/** A stand-in build: the routes serve whatever `npm run build:console` produced. */
async function fakeBuild(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tokenvault-console-static-'));
  await mkdir(join(dir, 'assets'));
  await writeFile(join(dir, 'index.html'), '<!doctype html><title>tokenvault console</title><script type="module" src="/console/assets/app.js"></script>');
  await writeFile(join(dir, 'assets', 'app.js'), 'console.log("console");');
  return dir;
}

it.beforeAll(async ({ harness: shared, sample }) => {
  harness = shared;
  ip = sample.ip;
  consoleDir = await fakeBuild();
  app = await harness.buildApp({ CONSOLE_DIR: consoleDir });
});
afterAll(async () => {
  await rm(consoleDir, { recursive: true, force: true });
});

describe('web console routes', () => {
  it('serves the built console under /console/ with a strict CSP, no caching and no framing', async () => {
    const response = await app.inject({ method: 'GET', url: '/console/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/html');
    expect(response.body).toContain('tokenvault console');
    const csp = String(response.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(response.headers).toMatchObject({
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
    });
    const script = await app.inject({ method: 'GET', url: '/console/assets/app.js' });
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toContain('javascript');
    expect(script.headers['content-security-policy']).toBe(csp);
  });

  it('answers every view path with the app, a missing file with 404, and /console with a redirect', async () => {
    for (const url of ['/console/audit', '/console/reveal', '/console/approvals?x=1']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(200);
      expect(response.body).toContain('tokenvault console');
    }
    const missing = await app.inject({ method: 'GET', url: '/console/assets/nope.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: { code: 'not_found', message: 'no such file' } });
    const bare = await app.inject({ method: 'GET', url: '/console' });
    expect(bare.statusCode).toBe(302);
    expect(bare.headers.location).toBe('/console/');
    // The API's own answers keep their headers: no CSP meant for the page on /reveal.
    const api = await app.inject({ method: 'GET', url: '/healthz' });
    expect(api.headers['content-security-policy']).toBeUndefined();
  });

  it('tells the page how to sign in, and lets the identity provider into connect-src only when configured', async () => {
    expect((await app.inject({ method: 'GET', url: '/console/settings.json' })).json()).toEqual({ oidc: null, local_sign_in: null, reveal_clear_seconds: 60 });
    const oidc = await harness.buildApp({
      CONSOLE_DIR: consoleDir,
      CONSOLE_OIDC_ISSUER: 'https://login.example.com/realms/acme',
      CONSOLE_OIDC_CLIENT_ID: 'tokenvault-console',
      CONSOLE_OIDC_SCOPE: 'openid tokenvault',
      CONSOLE_REVEAL_CLEAR_SECONDS: '30',
    });
    const settings = await oidc.inject({ method: 'GET', url: '/console/settings.json' });
    expect(settings.json()).toEqual({
      oidc: { issuer: 'https://login.example.com/realms/acme', client_id: 'tokenvault-console', scope: 'openid tokenvault', resource: null },
      local_sign_in: null,
      reveal_clear_seconds: 30,
    });
    expect(settings.headers['content-security-policy']).toContain("connect-src 'self' https://login.example.com;");
  });

  it('has no local sign-in unless built by the local stack, and there it mints tokens the API accepts for the chosen role', async () => {
    const refused = await app.inject({ method: 'POST', url: '/console/local-sign-in', payload: { role: 'investigator' } });
    expect(refused.statusCode).toBe(404);

    const local = await harness.buildApp({ CONSOLE_DIR: consoleDir, CONSOLE_LOCAL_SIGN_IN: 'true' }, { localStack: true });
    expect((await local.inject({ method: 'GET', url: '/console/settings.json' })).json()).toMatchObject({
      local_sign_in: { roles: ['investigator', 'support', 'approver', 'analyst', 'auditor', 'privacy-officer'] },
    });
    const unknown = await local.inject({ method: 'POST', url: '/console/local-sign-in', payload: { role: 'root' } });
    expect(unknown.statusCode).toBe(400);
    const signedIn = await local.inject({ method: 'POST', url: '/console/local-sign-in', payload: { role: 'support', name: 'desk-7' } });
    expect(signedIn.statusCode).toBe(200);
    const { access_token: accessToken, expires_at: expiresAt } = signedIn.json<{ access_token: string; expires_at: string }>();
    expect(new Date(expiresAt).getTime()).toBeGreaterThan(Date.now());
    const revealed = await local.inject({
      method: 'POST',
      url: '/reveal',
      headers: bearer(accessToken),
      payload: { tokens: [ip.token], purpose: PURPOSE },
    });
    expect(revealed.json()).toEqual({ results: [{ token: ip.token, field: 'ip', value: '199.172.*.*', redaction: 'masked' }], audit_seq: expect.any(Number) });
  });

  it('refuses the local sign-in to a request relayed by a proxy or naming another host (DNS rebinding), and does not offer it to them', async () => {
    const local = await harness.buildApp({ CONSOLE_DIR: consoleDir, CONSOLE_LOCAL_SIGN_IN: 'true' }, { localStack: true });
    const cases: [string, Record<string, string>, RegExp][] = [
      ['proxied', { 'x-forwarded-for': '203.0.113.9' }, /through a proxy/],
      ['Forwarded header', { forwarded: 'for=203.0.113.9' }, /through a proxy/],
      ['rebinding page', { host: 'attacker.example:3000' }, /Host header/],
    ];
    for (const [name, headers, reason] of cases) {
      const refused = await local.inject({ method: 'POST', url: '/console/local-sign-in', headers, payload: { role: 'investigator' } });
      expect(refused.statusCode, name).toBe(404);
      expect(refused.json<{ error: { message: string } }>().error.message, name).toMatch(reason);
      expect(refused.body, name).not.toMatch(/eyJ/);
      const settings = await local.inject({ method: 'GET', url: '/console/settings.json', headers });
      expect(settings.json(), name).toMatchObject({ local_sign_in: null });
    }
    for (const host of ['localhost:3000', '127.0.0.1:3000', '[::1]:3000']) {
      const accepted = await local.inject({ method: 'POST', url: '/console/local-sign-in', headers: { host }, payload: { role: 'auditor' } });
      expect(accepted.statusCode, host).toBe(200);
    }
  });

  it('refuses to build an app with local sign-in but without the local signing key', async () => {
    await expect(harness.buildApp({ CONSOLE_DIR: consoleDir, CONSOLE_LOCAL_SIGN_IN: 'true' })).rejects.toThrow(/CONSOLE_LOCAL_SIGN_IN/);
  });

  it('says how to build the console when it is not built, and can be switched off', async () => {
    const unbuilt = await harness.buildApp({ CONSOLE_DIR: join(consoleDir, 'missing') });
    const response = await unbuilt.inject({ method: 'GET', url: '/console/' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ error: { code: 'console_not_built' } });
    expect(response.json<{ error: { message: string } }>().error.message).toContain('npm run build');
    const off = await harness.buildApp({ CONSOLE_DIR: consoleDir, CONSOLE_ENABLED: 'false' });
    expect((await off.inject({ method: 'GET', url: '/console/' })).statusCode).toBe(404);
  });
});
