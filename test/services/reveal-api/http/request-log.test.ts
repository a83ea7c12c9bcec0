import { describe, expect } from 'vitest';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { bearer } from '../../../support/reveal-harness.js';

const it = revealTestFor();

interface LogLine {
  msg?: string;
  request?: { method: string; route: string | null; query?: string[]; other_query_parameters?: number };
}

/** A value per place, shaped like what people paste by mistake (an IP), distinct so a leak names its source. */
const valueFor = (route: number, place: number) => `10.${route}.${place}.77`;

describe('request logs (finding 8)', () => {
  it('carry the route pattern and the names of query parameters, never their values, for every route of the app', async ({ harness }) => {
    const headers = bearer(await harness.token('logan', ['investigator', 'auditor', 'approver', 'privacy-officer', 'analyst']));
    const before = harness.logs.length;
    const sent: { method: string; url: string; route: string; query: string[]; values: string[] }[] = [];
    // Every route the app registered (a new one is covered as it is added), each query parameter it declares, one it does not,
    // a value as a parameter's name, and a value in every path parameter or wildcard.
    for (const [index, route] of harness.app.routeList.entries()) {
      const values: string[] = [];
      const value = () => {
        const next = valueFor(index, values.length);
        values.push(next);
        return next;
      };
      const path = route.url.replace(/:[A-Za-z_]+/g, () => value()).replace('*', () => `file-${value()}`);
      const query = [...route.query.map((name) => `${name}=${value()}`), `undeclared=${value()}`, `${value()}=1`].join('&');
      const url = `${path}?${query}`;
      for (const withCredentials of [true, false]) {
        await harness.app.inject({ method: route.method as 'GET', url, ...(withCredentials ? { headers } : {}), ...(route.method === 'POST' ? { payload: {} } : {}) });
      }
      sent.push({ method: route.method, url, route: route.url, query: route.query, values });
    }
    expect(sent.map((request) => `${request.method} ${request.route}`)).toEqual(expect.arrayContaining(['GET /audit', 'POST /reveal', 'GET /reveal-requests/:id', 'POST /approvals/:id', 'GET /audit/export']));
    expect(sent.find((request) => request.route === '/audit')?.query).toEqual(expect.arrayContaining(['actor', 'token', 'outcome', 'action', 'from', 'to', 'cursor', 'limit']));

    const lines = harness.logs.slice(before);
    const text = lines.join('\n');
    for (const request of sent) for (const value of request.values) expect(text, `${request.method} ${request.url}`).not.toContain(value);

    const parsed = lines.map((line) => JSON.parse(line) as LogLine);
    for (const request of sent) {
      const logged = parsed.filter((line) => line.msg === 'incoming request' && line.request?.method === request.method && line.request.route === request.route);
      expect(logged, `${request.method} ${request.route}`).toHaveLength(2);
      expect(logged[0]?.request).toEqual({
        method: request.method,
        route: request.route,
        ...(request.query.length > 0 ? { query: [...request.query].sort() } : {}),
        other_query_parameters: 2,
        remoteAddress: '127.0.0.1',
      });
    }
    expect(parsed.filter((line) => line.msg === 'request completed').length).toBeGreaterThanOrEqual(sent.length * 2);
  });

  it('logs a request that matched no route without its path', async ({ harness }) => {
    const before = harness.logs.length;
    const response = await harness.app.inject({ url: '/persons/199.172.111.135/history?token=199.172.111.136' });
    expect(response.statusCode).toBe(404);
    const text = harness.logs.slice(before).join('\n');
    expect(text).not.toContain('199.172.111.13');
    expect(text).toContain('"route":null');
  });
});
