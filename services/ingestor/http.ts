import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { readinessStatus, type Readiness } from '../../lib/health/readiness.js';
import { errorBody } from '../../lib/errors.js';

export interface HealthServerOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  registry: Registry;
  checkReady: () => Promise<Readiness>;
}

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

/**
 * GET /metrics (Prometheus text), /healthz (the process answers), /readyz (database
 * reachable, token key loaded, polling). Plain node:http: three routes need no framework.
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const known = path === '/healthz' || path === '/readyz' || path === '/metrics';
    if (!known) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify(errorBody('not_found', 'no such route; try /healthz, /readyz or /metrics')));
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res
        .writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' })
        .end(JSON.stringify(errorBody('method_not_allowed', `${req.method ?? 'this method'} is not allowed here; this path answers GET, HEAD`)));
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (path === '/readyz') {
      options
        .checkReady()
        .then((readiness) => {
          res.writeHead(readinessStatus(readiness), { 'content-type': 'application/json' }).end(JSON.stringify(readiness));
        })
        .catch(() => res.writeHead(503).end());
      return;
    }
    if (path === '/metrics') {
      options.registry
        .metrics()
        .then((text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text))
        .catch(() => res.writeHead(500).end());
      return;
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
