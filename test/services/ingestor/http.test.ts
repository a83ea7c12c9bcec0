import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHealthServer, type HealthServer } from '../../../services/ingestor/http.js';
import { checkReadiness, readinessSchema, type Readiness } from '../../../lib/health/readiness.js';

let server: HealthServer;
let readiness: Readiness = { status: 'ready', checks: { database: { ok: true }, tokenKey: { ok: true, detail: 'v1' }, polling: { ok: true } } };
const registry = new Registry();

beforeAll(async () => {
  new Counter({ name: 'tokenvault_ingestor_messages_stored_total', help: 'stored', registers: [registry] }).inc(7);
  server = await startHealthServer({ host: '127.0.0.1', port: 0, registry, checkReady: async () => readiness });
});
afterAll(async () => {
  await server.close();
});

const get = (path: string) => fetch(`http://127.0.0.1:${server.port}${path}`);

describe('ingestor health and metrics endpoints', () => {
  it('serves Prometheus metrics from its own registry', async () => {
    const response = await get('/metrics');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    expect(await response.text()).toContain('tokenvault_ingestor_messages_stored_total 7');
  });

  it('answers /healthz while the process runs', async () => {
    expect((await get('/healthz')).status).toBe(200);
  });

  it('reports /readyz 200 when ready and 503 with the failing check otherwise', async () => {
    expect((await get('/readyz')).status).toBe(200);
    readiness = await checkReadiness({
      database: () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432'), { code: 'ECONNREFUSED' })),
      tokenKey: async () => 'v1',
    });
    const response = await get('/readyz');
    expect(response.status).toBe(503);
    const body: unknown = await response.json();
    expect(body).toEqual({ status: 'not_ready', checks: { database: { ok: false, error: 'unavailable (ECONNREFUSED)' }, tokenKey: { ok: true, detail: 'v1' } } });
    expect(readinessSchema.parse(body)).toEqual(body);
  });

  it('answers unknown paths with 404 and other methods with 405', async () => {
    expect((await get('/nope')).status).toBe(404);
    const wrong = await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: 'POST' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, HEAD');
    expect(await wrong.json()).toEqual({ error: { code: 'method_not_allowed', message: 'POST is not allowed here; this path answers GET, HEAD' } });
    expect(await (await get('/nope')).json()).toMatchObject({ error: { code: 'not_found' } });
  });
});
