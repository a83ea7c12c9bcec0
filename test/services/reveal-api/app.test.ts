import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { createDatabase } from '../../../db/client.js';
import { readinessSchema } from '../../../lib/health/readiness.js';
import { LocalKeyring } from '../../../lib/keys/local-keyring.js';
import { buildRevealApp } from '../../../services/reveal-api/app.js';
import { LOCAL_AUDIENCE, LOCAL_ISSUER } from '../../../lib/auth/local-signing-key.js';
import { loadRevealConfig } from '../../../services/reveal-api/config.js';
import { revealTestFor, type Sample } from '../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE, type RevealHarness } from '../../support/reveal-harness.js';

const it = revealTestFor();

type Expectation = 'plain' | 'masked' | 'ok' | 403;
const ROLES = ['investigator', 'support', 'analyst', 'auditor', 'privacy-officer', 'no-such-role'] as const;

/** The default policy, spelled out: role → endpoint/field → outcome. */
const MATRIX: Record<(typeof ROLES)[number], Record<string, Expectation>> = {
  investigator: { 'reveal ip': 'plain', 'reveal device_id': 'plain', 'tokenize ip': 403, 'tokenize device_id': 403, 'erase ip': 403, 'erase device_id': 403, 'audit read': 403, 'audit verify': 403 },
  support: { 'reveal ip': 'masked', 'reveal device_id': 'masked', 'tokenize ip': 403, 'tokenize device_id': 403, 'erase ip': 403, 'erase device_id': 403, 'audit read': 403, 'audit verify': 403 },
  analyst: { 'reveal ip': 403, 'reveal device_id': 403, 'tokenize ip': 'ok', 'tokenize device_id': 'ok', 'erase ip': 403, 'erase device_id': 403, 'audit read': 403, 'audit verify': 403 },
  auditor: { 'reveal ip': 403, 'reveal device_id': 403, 'tokenize ip': 403, 'tokenize device_id': 403, 'erase ip': 403, 'erase device_id': 403, 'audit read': 'ok', 'audit verify': 'ok' },
  'privacy-officer': { 'reveal ip': 403, 'reveal device_id': 403, 'tokenize ip': 403, 'tokenize device_id': 403, 'erase ip': 'ok', 'erase device_id': 'ok', 'audit read': 403, 'audit verify': 403 },
  'no-such-role': { 'reveal ip': 403, 'reveal device_id': 403, 'tokenize ip': 403, 'tokenize device_id': 403, 'erase ip': 403, 'erase device_id': 403, 'audit read': 403, 'audit verify': 403 },
};

/**
 * Each case its own caller: refusals are audited once per caller, action and code in a window
 * (the rest summarised), so a case sharing its caller with another could read the other's row.
 */
const callerOf = (role: string, operation: string) => `user-${role}-${operation.replace(' ', '-')}`;

async function call(harness: RevealHarness, sample: Sample, role: string, operation: string) {
  const headers = bearer(await harness.token(callerOf(role, operation), [role]));
  const [verb, what] = operation.split(' ') as [string, string];
  const seeded = what === 'ip' ? sample.ip : sample.device;
  switch (verb) {
    case 'reveal':
      return harness.app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: [seeded.token], purpose: PURPOSE } });
    case 'tokenize':
      return harness.app.inject({ method: 'POST', url: '/tokenize', headers, payload: { field: what, values: [seeded.value] } });
    case 'erase':
      // A well-formed token that is not stored: the permission is exercised without destroying seeded rows.
      return harness.app.inject({ method: 'POST', url: '/erase', headers, payload: { tokens: [`${seeded.token.slice(0, -4)}ZZZZ`], purpose: PURPOSE } });
    default:
      return harness.app.inject({ method: 'GET', url: what === 'read' ? '/audit' : '/audit/verify', headers });
  }
}

describe('authorization matrix of the default policy', () => {
  for (const role of ROLES) {
    for (const [operation, expected] of Object.entries(MATRIX[role])) {
      it(`${role}: ${operation} → ${expected}`, async ({ harness, sample }) => {
        const response = await call(harness, sample, role, operation);
        const last = (await auditRows(harness.testDb)).at(-1);
        expect(last?.actor).toBe(callerOf(role, operation));
        if (expected === 403) {
          expect(response.statusCode).toBe(403);
          expect(response.json()).toEqual({ error: { code: 'forbidden', message: expect.any(String) } });
          expect(last?.outcome).toBe('denied');
          return;
        }
        expect(response.statusCode).toBe(200);
        expect(last?.outcome).toBe('allowed');
        if (expected === 'plain' || expected === 'masked') {
          expect(response.json().results[0].redaction).toBe(expected === 'plain' ? 'none' : 'masked');
        }
      });
    }
  }
});

describe('operations endpoints', () => {
  it('reports liveness and readiness (database, key provider, token key)', async ({ harness }) => {
    expect((await harness.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await harness.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', checks: { database: { ok: true }, keyProvider: { ok: true }, tokenKey: { ok: true, detail: 'v1' } } });
  });

  it('answers 503 in the same shape, naming the failed check, when the database is unreachable', async ({ harness }) => {
    const unreachable = createDatabase({ url: 'postgres://reveal@127.0.0.1:1/tokenvault', role: undefined, poolSize: 1 });
    const keyDir = await mkdtemp(join(tmpdir(), 'tokenvault-readyz-'));
    try {
      const config = loadRevealConfig({
        DATABASE_URL: 'postgres://reveal@127.0.0.1:1/tokenvault',
        LOCAL_MASTER_KEY_FILE: join(keyDir, 'master.key'),
        JWT_PUBLIC_KEY: harness.signingKey.publicKeyPem,
        JWT_ISSUER: LOCAL_ISSUER,
        JWT_AUDIENCE: LOCAL_AUDIENCE,
        LOG_LEVEL: 'silent',
      });
      const app = await buildRevealApp({ config, database: unreachable, keys: LocalKeyring.fromKey(randomBytes(32)) });
      try {
        const ready = await app.inject({ url: '/readyz' });
        expect(ready.statusCode).toBe(503);
        expect(ready.json()).toEqual({
          status: 'not_ready',
          checks: { database: { ok: false, error: 'unavailable (ECONNREFUSED)' }, keyProvider: { ok: true }, tokenKey: { ok: true, detail: 'none yet (the ingestor creates v1)' } },
        });
        expect(readinessSchema.parse(ready.json())).toEqual(ready.json());
      } finally {
        await app.close();
      }
    } finally {
      await unreachable.close();
      await rm(keyDir, { recursive: true, force: true });
    }
  });

  it('exposes Prometheus metrics from its own registry', async ({ harness, sample }) => {
    // A reveal of its own: labelled series appear once something was counted under them.
    expect((await call(harness, sample, 'investigator', 'reveal ip')).statusCode).toBe(200);
    const metrics = await harness.app.inject({ url: '/metrics' });
    expect(metrics.headers['content-type']).toMatch(/text\/plain/);
    expect(metrics.body).toMatch(/tokenvault_reveal_requests_total\{action="reveal",outcome="allowed"\} \d+/);
    expect(metrics.body).toMatch(/tokenvault_revealed_values_total\{field="ip",redaction="none"\} \d+/);
    expect(metrics.body).toMatch(/tokenvault_audit_write_seconds_count \d+/);
    expect(metrics.body).toContain('tokenvault_rate_limit_hits_total');
  });

  it('exports the process and Node.js runtime metrics next to its own', async ({ harness }) => {
    const metrics = await harness.app.inject({ url: '/metrics' });
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds']) {
      expect(metrics.body).toContain(`# TYPE ${name} `);
    }
  });

  it('serves OpenAPI documentation at /docs', async ({ harness }) => {
    const spec = await harness.app.inject({ url: '/docs/json' });
    expect(spec.statusCode).toBe(200);
    expect(Object.keys(spec.json().paths)).toEqual(expect.arrayContaining(['/reveal', '/tokenize', '/erase', '/audit', '/audit/verify']));
    const { version } = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(spec.json().info.version).toBe(version);
    expect((await harness.app.inject({ url: '/docs' })).statusCode).toBeLessThan(400);
  });

  it('documents the governance routes and the 202 of a reveal waiting for approval in OpenAPI', async ({ harness }) => {
    const spec = (await harness.app.inject({ url: '/docs/json' })).json<{ paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }>();
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/me', '/approvals', '/approvals/{id}', '/reveal-requests/{id}']));
    expect(Object.keys(spec.paths['/reveal']?.post?.responses ?? {})).toEqual(expect.arrayContaining(['200', '202', '429']));
    expect(Object.keys(spec.paths['/reveal-requests/{id}']?.get?.responses ?? {})).toEqual(expect.arrayContaining(['200', '404', '409', '410']));
  });

  it('answers / (the address npm start prints): a browser goes to the console, anything else gets an index', async ({ harness }) => {
    const browser = await harness.app.inject({ url: '/', headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    expect(browser.statusCode).toBe(302);
    expect(browser.headers.location).toBe('/console/');
    const index = await harness.app.inject({ url: '/' });
    expect(index.statusCode).toBe(200);
    expect(index.json()).toMatchObject({ service: 'tokenvault reveal-api', console: '/console/', docs: '/docs', openapi: '/docs/json', health: '/healthz', ready: '/readyz', metrics: '/metrics' });
    for (const path of ['docs', 'openapi', 'health', 'ready', 'metrics'] as const) {
      expect((await harness.app.inject({ url: index.json()[path] })).statusCode, path).toBeLessThan(400);
    }
    const off = await harness.buildApp({ CONSOLE_ENABLED: 'false' });
    expect((await off.inject({ url: '/', headers: { accept: 'text/html' } })).json()).toMatchObject({ console: null });
  });

  it('serves real HTTP when listening (port 0)', async ({ harness, sample: { ip } }) => {
    const app = await harness.buildApp();
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const response = await fetch(`${address}/reveal`, {
        method: 'POST',
        headers: { ...bearer(await harness.token('alice', ['investigator'])), 'content-type': 'application/json' },
        body: JSON.stringify({ tokens: [ip.token], purpose: PURPOSE }),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('x-request-id')).toBeTruthy();
      expect(await response.json()).toEqual({ results: [{ token: ip.token, field: 'ip', value: ip.value, redaction: 'none' }], audit_seq: expect.any(Number) });
      const last = (await auditRows(harness.testDb)).at(-1);
      expect(last?.client_address).toBe('127.0.0.1');
    } finally {
      await app.close();
    }
  });
});
