import { describe, expect } from 'vitest';
import { verifyHashChain } from '../../../../lib/audit/hash-chain-verifier.js';
import { MAX_OPEN_REQUESTS } from '../../../../services/reveal-api/approvals/desk.js';
import { freshRevealTest } from '../../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE } from '../../../support/reveal-harness.js';

/** Findings 5 and 6 of issue 16: four-eyes requests under concurrency, against real PostgreSQL. */
const POLICY = {
  roles: {
    investigator: { reveal: { ip: 'plain', device_id: 'plain' }, approval: { fields: ['device_id'] } },
    approver: { approve: true },
    analyst: { tokenize: ['ip'] },
    'privacy-officer': { erase: ['ip'], person: { access: { ip: 'plain' }, erase: true } },
  },
  approval: { ttl_seconds: 600, approvers_required: 1 },
};

describe('the cap of open requests per requester', () => {
  const it = freshRevealTest.override('revealSetup', { policy: POLICY });
  it('holds under concurrency: of 40 concurrent requests exactly 20 are opened and 20 refused (429), each refusal audited', async ({ harness }) => {
    const [device] = await harness.seed([{ field: 'device_id', value: '321-54-9876' }]);
    const headers = bearer(await harness.token('sven', ['investigator']));
    const app = harness.app;
    const responses = await Promise.all(
      Array.from({ length: 2 * MAX_OPEN_REQUESTS }, () => app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: [device?.token], purpose: PURPOSE } })),
    );
    const statuses = responses.map((response) => response.statusCode);
    expect(statuses.filter((status) => status === 202)).toHaveLength(MAX_OPEN_REQUESTS);
    expect(statuses.filter((status) => status === 429)).toHaveLength(MAX_OPEN_REQUESTS);
    for (const refused of responses.filter((response) => response.statusCode === 429)) expect(refused.json().error.code).toBe('too_many_open_requests');

    const { rows } = await harness.testDb.owner.pool.query<{ open: number }>("SELECT count(*)::int AS open FROM reveal_requests WHERE requester = 'sven' AND status = 'pending'");
    expect(rows[0]?.open).toBe(MAX_OPEN_REQUESTS);
    const steps = (await auditRows(harness.testDb)).filter((row) => row.actor === 'sven' && row.action === 'reveal.request');
    expect(steps.filter((row) => row.outcome === 'pending')).toHaveLength(MAX_OPEN_REQUESTS);
    expect(steps.filter((row) => row.outcome === 'rate_limited' && row.reason === 'too_many_open_requests')).toHaveLength(MAX_OPEN_REQUESTS);
  });
});

describe('a small connection pool', () => {
  const it = freshRevealTest.override('revealSetup', { policy: POLICY, env: { DATABASE_POOL_SIZE: '4' } });
  it('serves 20 concurrent collections and 20 reveals (with erasures, tokenizations and person requests) with DATABASE_POOL_SIZE=4 without a 503', async ({ harness }) => {
    const { app } = harness;
    expect(harness.database.pool.options.max).toBe(4);
    const devices = await harness.seed(Array.from({ length: 20 }, (_, index) => ({ field: 'device_id' as const, value: `400-10-${String(2000 + index)}` })));
    const [ip] = await harness.seed([{ field: 'ip', value: '192.0.2.44' }]);
    const approver = bearer(await harness.token('olga', ['approver']));
    const requesters = ['ada', 'bert', 'cleo', 'dirk'];
    const asRequester = new Map(await Promise.all(requesters.map(async (sub) => [sub, bearer(await harness.token(sub, ['investigator']))] as const)));
    const requests: { id: string; sub: string; value: string }[] = [];
    for (const [index, device] of devices.entries()) {
      const sub = requesters[index % requesters.length]!;
      const created = await app.inject({ method: 'POST', url: '/reveal', headers: asRequester.get(sub), payload: { tokens: [device.token], purpose: PURPOSE } });
      expect(created.statusCode).toBe(202);
      const id = created.json<{ request_id: string }>().request_id;
      expect((await app.inject({ method: 'POST', url: `/approvals/${id}`, headers: approver, payload: { decision: 'approve', reason: 'case file checked' } })).statusCode).toBe(200);
      requests.push({ id, sub, value: device.value });
    }
    const revealer = bearer(await harness.token('eve', ['investigator']));
    const erasable = await harness.seed(Array.from({ length: 5 }, (_, index) => ({ field: 'ip' as const, value: `198.51.100.${index + 1}` })));
    const officer = bearer(await harness.token('pia', ['privacy-officer']));
    const analyst = bearer(await harness.token('ana', ['analyst']));

    const [collections, reveals, others] = await Promise.all([
      Promise.all(requests.map(({ id, sub }) => app.inject({ url: `/reveal-requests/${id}`, headers: asRequester.get(sub) }))),
      Promise.all(Array.from({ length: 20 }, () => app.inject({ method: 'POST', url: '/reveal', headers: revealer, payload: { tokens: [ip?.token], purpose: PURPOSE } }))),
      Promise.all([
        ...erasable.map((value) => app.inject({ method: 'POST', url: '/erase', headers: officer, payload: { tokens: [value.token], purpose: PURPOSE } })),
        ...erasable.map((_, index) => app.inject({ method: 'POST', url: '/tokenize', headers: analyst, payload: { field: 'ip', values: [`203.0.113.${index + 1}`] } })),
        ...erasable.map((_, index) =>
          app.inject({ method: 'POST', url: '/persons/access', headers: officer, payload: { user_id: `person-${index}`, purpose: PURPOSE, ticket: `DSR-${index}` } }),
        ),
      ]),
    ]);
    expect(collections.map((response) => response.statusCode)).toEqual(requests.map(() => 200));
    collections.forEach((response, index) => expect(response.json()).toMatchObject({ status: 'collected', results: [{ value: requests[index]!.value }] }));
    expect(reveals.map((response) => response.statusCode)).toEqual(reveals.map(() => 200));
    expect(others.map((response) => response.statusCode)).toEqual(others.map(() => 200));
    expect((await verifyHashChain(harness.testDb.owner.pool)).ok).toBe(true);
  });
});
