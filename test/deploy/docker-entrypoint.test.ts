import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runProcess, type ProcessRun } from '../support/processes.js';

function entrypoint(args: string[], env: Record<string, string> = {}): Promise<ProcessRun> {
  // Run from the repository root, as the image runs it from /app (node_modules beside dist).
  return runProcess('sh', [`${ROOT}deploy/docker-entrypoint.sh`, ...args], env);
}

let healthy: Server;
let healthyPort: number;
let closedPort: number;

beforeAll(async () => {
  healthy = createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end('{"status":"ok"}'));
  await new Promise<void>((done) => healthy.listen(0, '127.0.0.1', done));
  healthyPort = (healthy.address() as AddressInfo).port;
  // A port nobody listens on: open a server, note its port, close it.
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((done) => probe.close(() => done()));
});
afterAll(async () => {
  await new Promise<void>((done) => healthy.close(() => done()));
});

describe('docker-entrypoint.sh', () => {
  it('lists its commands, and rejects an unknown one with a usage error', async () => {
    const help = await entrypoint(['help']);
    expect(help.code).toBe(0);
    for (const command of ['ingestor', 'reveal-api', 'migrate', 'keys:rotate-kek', 'keys:rotate-token-key', 'audit:verify', 'audit:export', 'maintenance', 'db:partition', 'healthcheck']) {
      expect(help.stdout).toContain(command);
    }
    const unknown = await entrypoint(['bogus']);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toContain("unknown command 'bogus'");
  });

  it('reports healthy when the service answers /healthz on PORT or METRICS_PORT, unhealthy otherwise', async () => {
    const reveal = await entrypoint(['healthcheck'], { PORT: String(healthyPort), METRICS_PORT: String(closedPort) });
    expect(reveal.code).toBe(0);
    const ingestor = await entrypoint(['healthcheck'], { PORT: String(closedPort), METRICS_PORT: String(healthyPort) });
    expect(ingestor.code).toBe(0);
    const down = await entrypoint(['healthcheck'], { PORT: String(closedPort), METRICS_PORT: String(closedPort) });
    expect(down.code).toBe(1);
  });

  it('mints a local JWT the reveal-api settings accept, and only when a local JWT_SECRET is configured', async () => {
    const settings = { JWT_SECRET: 'x'.repeat(40), JWT_ISSUER: 'tokenvault-compose', JWT_AUDIENCE: 'tokenvault-reveal-api' };
    const minted = await entrypoint(['mint-local-token', 'investigator', 'auditor'], settings);
    expect(minted.stderr).toBe('');
    expect(minted.code).toBe(0);
    const { payload, protectedHeader } = await jwtVerify(minted.stdout.trim(), new TextEncoder().encode(settings.JWT_SECRET), {
      issuer: settings.JWT_ISSUER,
      audience: settings.JWT_AUDIENCE,
      algorithms: ['HS256'],
    });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload).toMatchObject({ sub: 'local-investigator+auditor', roles: ['investigator', 'auditor'] });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(3600);

    const withoutSecret = await entrypoint(['mint-local-token', 'investigator']);
    expect(withoutSecret.code).toBe(64);
    expect(withoutSecret.stderr).toContain('only works with JWT_SECRET');
  });
});
