import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHealthServer, type HealthServer } from '../../../services/ingestor/http.js';
import type { Readiness } from '../../../services/ingestor/worker.js';

let server: HealthServer;
let readiness: Readiness = { ready: true, database: true, queue: true, tokenKey: true, polling: true, reasons: [] };
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
    readiness = { ready: false, database: false, queue: true, tokenKey: true, polling: true, reasons: ['database unreachable (ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:5432)'] };
    const response = await get('/readyz');
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ database: false });
  });

  it('answers unknown paths with 404 and other methods with 405', async () => {
    expect((await get('/nope')).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});
