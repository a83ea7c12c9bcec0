import fastify from 'fastify';
import { describe, expect } from 'vitest';
import { registerAuthorization, type AuthorizationDeps } from '../../../../services/reveal-api/http/authorize.js';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE, type SeededValue } from '../../../support/reveal-harness.js';

const it = revealTestFor();

const REQUEST_ID = '00000000-0000-4000-8000-000000000001';

/** Every route that declares what the caller's roles must allow, asked by a caller whose roles allow nothing. */
const refusals = (ip: SeededValue) => [
  { method: 'POST', url: '/reveal', payload: { tokens: [ip.token], purpose: PURPOSE }, action: 'reveal', reason: 'no reveal permission', tokens: [ip.token], message: 'revealing values' },
  { method: 'POST', url: '/erase', payload: { tokens: [ip.token], purpose: PURPOSE }, action: 'erase', reason: 'no erase permission', tokens: [ip.token], message: 'erasing values' },
  { method: 'POST', url: '/tokenize', payload: { field: 'ip', values: [ip.value] }, action: 'tokenize', reason: 'no tokenize permission for ip', tokens: [], message: 'tokenizing ip values' },
  { method: 'GET', url: `/audit?token=${ip.token}`, action: 'audit_read', reason: 'no audit permission', tokens: [ip.token], message: 'reading the audit log' },
  { method: 'GET', url: '/audit/verify', action: 'audit_verify', reason: 'no audit permission', tokens: [], message: 'reading the audit log' },
  { method: 'GET', url: '/audit/export', action: 'audit_export', reason: 'no audit permission', tokens: [], message: 'reading the audit log' },
  {
    method: 'POST',
    url: '/persons/access',
    payload: { user_id: 'u-1', purpose: PURPOSE, ticket: 'DSAR-1' },
    action: 'person.access',
    reason: 'user_id=u-1: no person access permission',
    tokens: [],
    message: 'requests about a person',
  },
  {
    method: 'POST',
    url: '/persons/erase',
    payload: { user_id: 'u-1', purpose: PURPOSE, ticket: 'DSAR-1' },
    action: 'person.erase',
    reason: 'user_id=u-1: no person erase permission',
    tokens: [],
    message: 'erasing a person',
  },
  {
    method: 'POST',
    url: `/approvals/${REQUEST_ID}`,
    payload: { decision: 'approve', reason: 'looks fine' },
    action: 'approval.approve',
    reason: 'not_an_approver',
    tokens: [],
    message: 'approving reveal requests',
  },
];

describe('authorization declared per route', () => {
  it('refuses a caller without the permission with 403 and one denied audit row per route, values never logged', async ({ harness, sample: { ip } }) => {
    for (const [index, route] of refusals(ip).entries()) {
      const actor = `nobody-${index}`;
      const before = (await auditRows(harness.testDb)).length;
      const response = await harness.app.inject({
        method: route.method as 'GET' | 'POST',
        url: route.url,
        headers: bearer(await harness.token(actor, ['no-such-role'])),
        ...(route.payload === undefined ? {} : { payload: route.payload }),
      });
      expect(response.statusCode, route.url).toBe(403);
      expect(response.json(), route.url).toEqual({ error: { code: 'forbidden', message: `your roles do not allow ${route.message}` } });
      const rows = (await auditRows(harness.testDb)).slice(before);
      expect(rows, route.url).toHaveLength(1);
      expect(rows[0], route.url).toMatchObject({ action: route.action, actor, outcome: 'denied', reason: route.reason, tokens: route.tokens });
      expect(JSON.stringify(rows)).not.toContain(ip.value);
    }
  });

  it('audits a denied approval under the reveal request it names', async ({ harness }) => {
    const before = (await auditRows(harness.testDb)).length;
    await harness.app.inject({
      method: 'POST',
      url: `/approvals/${REQUEST_ID}`,
      headers: bearer(await harness.token('nobody-deny', ['no-such-role'])),
      payload: { decision: 'deny', reason: 'no case number given' },
    });
    expect((await auditRows(harness.testDb)).slice(before)).toMatchObject([{ action: 'approval.deny', request_id: REQUEST_ID, outcome: 'denied', reason: 'not_an_approver' }]);
  });

  it('refuses listing approvals to non-approvers without an audit row (the list itself is not audited)', async ({ harness }) => {
    const before = (await auditRows(harness.testDb)).length;
    const response = await harness.app.inject({ method: 'GET', url: '/approvals', headers: bearer(await harness.token('nobody-list', ['no-such-role'])) });
    expect(response.statusCode).toBe(403);
    expect(response.json().error.message).toBe('your roles do not allow approving reveal requests');
    expect(await auditRows(harness.testDb)).toHaveLength(before);
  });

  it('authenticates every route that declares a permission, before validating its input', async ({ harness, sample: { ip } }) => {
    for (const route of [...refusals(ip), { method: 'GET', url: '/me' }, { method: 'GET', url: `/reveal-requests/${REQUEST_ID}` }, { method: 'GET', url: '/approvals' }]) {
      const response = await harness.app.inject({ method: route.method as 'GET' | 'POST', url: route.url, ...('payload' in route ? { payload: {} } : {}) });
      expect(response.statusCode, route.url).toBe(401);
      expect(response.json().error.code, route.url).toBe('unauthenticated');
    }
  });
});

describe('registerAuthorization', () => {
  const deps = { authenticate: async () => undefined } as unknown as AuthorizationDeps;

  it('refuses to register an audited route that declares no permission', async () => {
    const app = fastify();
    registerAuthorization(app, deps);
    expect(() => app.post('/forgotten', { config: { auditAction: 'reveal' } }, async () => ({}))).toThrow(
      'POST /forgotten is audited or needs a bearer token but declares no config.permission',
    );
    await app.close();
  });

  it('refuses to register a route documented as needing a bearer token that declares no permission', async () => {
    const app = fastify();
    registerAuthorization(app, deps);
    expect(() => app.get('/secret', { schema: { security: [{ bearerAuth: [] }] } }, async () => ({}))).toThrow('GET /secret');
    await app.close();
  });

  it('leaves public routes alone', async () => {
    const app = fastify();
    registerAuthorization(app, deps);
    app.get('/healthz', async () => ({ ok: true }));
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    await app.close();
  });
});
