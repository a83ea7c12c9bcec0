import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyHashChain } from '../../../../lib/audit/hash-chain-verifier.js';
import { MAX_OPEN_REQUESTS } from '../../../../services/reveal-api/approvals/desk.js';
import type { RevealApp } from '../../../../services/reveal-api/app.js';
import { auditRows, auditText, bearer, PURPOSE, startRevealHarness, writePolicyFile, type RevealHarness, type SeededValue } from '../../../support/reveal-harness.js';

const POLICY = {
  roles: {
    investigator: { reveal: { ip: 'plain', device_id: 'plain' }, budget: { per_hour: 1000 }, approval: { fields: ['device_id'], above: 2 } },
    approver: { approve: true },
  },
  approval: { ttl_seconds: 600, approvers_required: 1 },
};

let harness: RevealHarness;
let app: RevealApp;
let values: SeededValue[];
let webhook: Server;
const notices: string[] = [];

// Budgets, metrics and webhook notices accumulate: each test starts with fresh ones.
beforeEach(async () => {
  notices.length = 0;
  webhook = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      notices.push(body);
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook`;
  harness = await startRevealHarness({ POLICY_FILE: await writePolicyFile(POLICY), APPROVAL_WEBHOOK_URL: url });
  app = harness.app;
  values = await harness.seed([
    { field: 'ip', value: '172.16.5.4' },
    { field: 'device_id', value: '987-65-4321' },
    { field: 'ip', value: '172.16.5.5' },
    { field: 'ip', value: '172.16.5.6' },
  ]);
}, 120_000);
afterEach(async () => {
  await harness?.close();
  await new Promise((resolve) => webhook?.close(resolve));
});

const tokenOf = (index: number) => (values[index] as SeededValue).token;
const as = async (sub: string, roles: string[]) => bearer(await harness.token(sub, roles));

async function requestReveal(sub: string, tokens: string[]): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/reveal', headers: await as(sub, ['investigator']), payload: { tokens, purpose: PURPOSE, ticket: 'CASE-9' } });
  expect(response.statusCode).toBe(202);
  const body = response.json<{ request_id: string; status: string; expires_at: string; approvals_required: number }>();
  expect(body).toEqual({ request_id: expect.any(String), status: 'pending_approval', approvals_required: 1, expires_at: expect.any(String), audit_seq: expect.any(Number) });
  return body.request_id;
}

const decide = async (id: string, sub: string, roles: string[], decision: 'approve' | 'deny', reason = 'checked the case file') =>
  app.inject({ method: 'POST', url: `/approvals/${id}`, headers: await as(sub, roles), payload: { decision, reason } });
const collect = async (id: string, sub: string) => app.inject({ url: `/reveal-requests/${id}`, headers: await as(sub, ['investigator']) });

describe('four-eyes reveals', () => {
  it('holds a request needing approval, lets an approver approve it, and hands the values out once', async () => {
    const id = await requestReveal('ivan', [tokenOf(0), tokenOf(1)]);

    const pending = await collect(id, 'ivan');
    expect(pending.json()).toMatchObject({ id, status: 'pending', approvals: 0, results: [] });

    const listed = await app.inject({ url: '/approvals', headers: await as('olga', ['approver']) });
    expect(listed.statusCode).toBe(200);
    const entry = listed.json<{ requests: Record<string, unknown>[] }>().requests.find((item) => item.id === id);
    expect(entry).toMatchObject({ requester: 'ivan', purpose: PURPOSE, ticket: 'CASE-9', field_counts: { ip: 1, device_id: 1 }, values: 2, approvals_required: 1 });
    expect(JSON.stringify(entry)).not.toContain(tokenOf(0));
    expect((await app.inject({ url: '/approvals', headers: await as('ivan', ['investigator']) })).statusCode).toBe(403);

    const approved = await decide(id, 'olga', ['approver'], 'approve');
    expect(approved.statusCode).toBe(200);
    expect(approved.json()).toMatchObject({ id, status: 'approved', approvals: 1, approvals_required: 1 });

    // Only the requester collects; someone else's id answers like a missing one.
    expect((await collect(id, 'mallory')).statusCode).toBe(404);
    const collected = await collect(id, 'ivan');
    expect(collected.statusCode).toBe(200);
    expect(collected.json()).toMatchObject({
      status: 'collected',
      results: [
        { token: tokenOf(0), field: 'ip', value: '172.16.5.4', redaction: 'none' },
        { token: tokenOf(1), field: 'device_id', value: '987-65-4321', redaction: 'none' },
      ],
    });
    expect(collected.headers['x-budget-remaining-hour']).toBe('998');

    const again = await collect(id, 'ivan');
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('already_collected');
    expect(again.body).not.toContain('172.16.5.4');

    const steps = (await auditRows(harness.testDb)).filter((row) => row.request_id === id).map((row) => [row.action, row.actor, row.outcome, row.reason]);
    expect(steps).toEqual([
      ['reveal.request', 'ivan', 'pending', 'pending_approval approvals_required=1'],
      ['approval.approve', 'olga', 'allowed', 'checked the case file'],
      ['reveal.collect', 'mallory', 'denied', 'not_requester'],
      ['reveal.collect', 'ivan', 'allowed', 'revealed=2'],
      ['reveal.collect', 'ivan', 'denied', 'already_collected'],
    ]);
  });

  it('reveals small requests of fields without a rule at once', async () => {
    const response = await app.inject({ method: 'POST', url: '/reveal', headers: await as('ivan', ['investigator']), payload: { tokens: [tokenOf(0)], purpose: PURPOSE } });
    expect(response.statusCode).toBe(200);
  });

  it('refuses and audits self-approval and approval by a non-approver', async () => {
    const id = await requestReveal('jane', [tokenOf(1)]);
    const self = await decide(id, 'jane', ['investigator', 'approver'], 'approve');
    expect(self.statusCode).toBe(403);
    expect(self.json().error.code).toBe('self_approval');
    const stranger = await decide(id, 'kim', ['investigator'], 'approve');
    expect(stranger.statusCode).toBe(403);
    expect(stranger.json().error.code).toBe('forbidden');
    expect((await collect(id, 'jane')).json()).toMatchObject({ status: 'pending' });
    const steps = (await auditRows(harness.testDb)).filter((row) => row.request_id === id).map((row) => [row.action, row.actor, row.outcome, row.reason]);
    expect(steps).toEqual([
      ['reveal.request', 'jane', 'pending', 'pending_approval approvals_required=1'],
      ['approval.approve', 'jane', 'denied', 'self_approval'],
      ['approval.approve', 'kim', 'denied', 'not_an_approver'],
    ]);
  });

  it('reveals nothing for a denied request', async () => {
    const id = await requestReveal('lena', [tokenOf(1)]);
    expect((await decide(id, 'olga', ['approver'], 'deny', 'no case number')).json()).toMatchObject({ status: 'denied' });
    expect((await decide(id, 'pete', ['approver'], 'approve')).statusCode).toBe(409);
    const denied = await collect(id, 'lena');
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error.code).toBe('request_denied');
    expect(denied.body).not.toContain('987-65-4321');
  });

  it('expires requests: collection after expiry reveals nothing, and the expiry is a row of the chain', async () => {
    const id = await requestReveal('mike', [tokenOf(1)]);
    expect((await decide(id, 'olga', ['approver'], 'approve')).statusCode).toBe(200);
    await harness.testDb.owner.pool.query("UPDATE reveal_requests SET expires_at = now() - interval '1 second' WHERE id = $1", [id]);
    const late = await collect(id, 'mike');
    expect(late.statusCode).toBe(410);
    expect(late.json().error.code).toBe('request_expired');
    expect(late.body).not.toContain('987-65-4321');
    expect((await collect(id, 'mike')).statusCode).toBe(410);

    // Requests nobody touches expire on their own.
    const idle = await requestReveal('mike', [tokenOf(1)]);
    await harness.testDb.owner.pool.query("UPDATE reveal_requests SET expires_at = now() - interval '1 second' WHERE id = $1", [idle]);
    expect((await app.inject({ url: '/approvals', headers: await as('olga', ['approver']) })).json().requests.map((item: { id: string }) => item.id)).not.toContain(idle);

    const rows = await auditRows(harness.testDb);
    expect(rows.filter((row) => row.request_id === id).map((row) => [row.action, row.outcome, row.reason?.split(' ')[0]])).toEqual([
      ['reveal.request', 'pending', 'pending_approval'],
      ['approval.approve', 'allowed', 'checked'],
      ['reveal.expire', 'expired', 'request_expired'],
      ['reveal.collect', 'denied', 'request_expired'],
      ['reveal.collect', 'denied', 'request_expired'],
    ]);
    expect(rows.filter((row) => row.request_id === idle).map((row) => row.action)).toEqual(['reveal.request', 'reveal.expire']);
  });

  it('does not trust an approval that is only in the requests table (an administrator flipping the status)', async () => {
    const id = await requestReveal('nina', [tokenOf(1)]);
    await harness.testDb.owner.pool.query("UPDATE reveal_requests SET status = 'approved' WHERE id = $1", [id]);
    const forged = await collect(id, 'nina');
    expect(forged.statusCode).toBe(409);
    expect(forged.json().error.code).toBe('approval_unverified');
    expect(forged.body).not.toContain('987-65-4321');
  });

  it('notifies approvers by webhook without tokens or values, keeps values out of every trace, and keeps the chain intact', async () => {
    // One request approved and collected, four left open.
    const id = await requestReveal('ivan', [tokenOf(0), tokenOf(1)]);
    expect((await decide(id, 'olga', ['approver'], 'approve')).statusCode).toBe(200);
    expect((await collect(id, 'ivan')).statusCode).toBe(200);
    for (const requester of ['jane', 'lena', 'mike', 'nina']) await requestReveal(requester, [tokenOf(1)]);
    await expect.poll(() => notices.length).toBeGreaterThanOrEqual(5);
    const notice = JSON.parse(notices[0] as string) as Record<string, unknown>;
    expect(notice).toEqual({
      event: 'reveal_request.created',
      id: expect.any(String),
      requester: 'ivan',
      purpose: PURPOSE,
      ticket: 'CASE-9',
      field_counts: { ip: 1, device_id: 1 },
      expires_at: expect.any(String),
    });
    const { rows } = await harness.testDb.owner.pool.query<{ text: string }>("SELECT string_agg(reveal_requests::text, E'\\n') AS text FROM reveal_requests");
    const traces = [notices.join('\n'), await auditText(harness.testDb), rows[0]?.text ?? '', harness.logs.join('\n')];
    for (const value of values.map((item) => item.value)) {
      for (const trace of traces) expect(trace).not.toContain(value);
    }
    expect(await verifyHashChain(harness.testDb.owner.pool)).toMatchObject({ ok: true });
    expect((await app.inject({ url: '/metrics' })).body).toMatch(/tokenvault_approval_steps_total\{step="collected"\} 1/);
  });
});

describe('a requester flooding approvers', () => {
  it('gets at most MAX_OPEN_REQUESTS open requests; the next is refused with 429 and audited', async () => {
    const flood = await startRevealHarness({ POLICY_FILE: await writePolicyFile(POLICY) });
    try {
      const [seeded] = await flood.seed([{ field: 'device_id', value: '888-99-0000' }]);
      const headers = bearer(await flood.token('sven', ['investigator']));
      const send = () => flood.app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: [seeded?.token], purpose: PURPOSE } });
      for (let index = 0; index < MAX_OPEN_REQUESTS; index += 1) expect((await send()).statusCode).toBe(202);
      const refused = await send();
      expect(refused.statusCode).toBe(429);
      expect(refused.json().error.code).toBe('too_many_open_requests');
      expect((await auditRows(flood.testDb)).at(-1)).toMatchObject({ action: 'reveal.request', actor: 'sven', outcome: 'rate_limited', reason: 'too_many_open_requests' });
    } finally {
      await flood.close();
    }
  });
});

describe('an unreachable approval webhook', () => {
  it('never fails or delays the request: the notice is counted as failed and logged', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const lonely = await startRevealHarness({ POLICY_FILE: await writePolicyFile(POLICY), APPROVAL_WEBHOOK_URL: `http://127.0.0.1:${port}/hook` });
    try {
      const [seeded] = await lonely.seed([{ field: 'device_id', value: '555-66-7777' }]);
      const created = await lonely.app.inject({
        method: 'POST',
        url: '/reveal',
        headers: bearer(await lonely.token('rita', ['investigator'])),
        payload: { tokens: [seeded?.token], purpose: PURPOSE },
      });
      expect(created.statusCode).toBe(202);
      await expect.poll(async () => (await lonely.app.inject({ url: '/metrics' })).body).toMatch(/tokenvault_approval_webhook_total\{result="failed"\} 1/);
      expect(lonely.logs.some((line) => line.includes('approval webhook unreachable'))).toBe(true);
    } finally {
      await lonely.close();
    }
  });
});

describe('two distinct approvers', () => {
  it('needs two different approvers before the requester can collect', async () => {
    const twoHarness = await startRevealHarness({ POLICY_FILE: await writePolicyFile({ ...POLICY, approval: { ttl_seconds: 600, approvers_required: 2 } }) });
    try {
      const [seeded] = await twoHarness.seed([{ field: 'device_id', value: '222-33-4444' }]);
      const send = async (sub: string, roles: string[], init: { method?: 'GET' | 'POST'; url: string; payload?: object }) =>
        twoHarness.app.inject({ ...init, headers: bearer(await twoHarness.token(sub, roles)) });
      const created = await send('quinn', ['investigator'], { method: 'POST', url: '/reveal', payload: { tokens: [seeded?.token], purpose: PURPOSE } });
      const id = created.json<{ request_id: string }>().request_id;
      expect(created.json()).toMatchObject({ approvals_required: 2 });
      const approve = (sub: string) => send(sub, ['approver'], { method: 'POST', url: `/approvals/${id}`, payload: { decision: 'approve', reason: 'looks right' } });
      expect((await approve('olga')).json()).toMatchObject({ status: 'pending', approvals: 1 });
      expect((await approve('olga')).json().error.code).toBe('already_approved');
      expect((await send('quinn', ['investigator'], { url: `/reveal-requests/${id}` })).json()).toMatchObject({ status: 'pending' });
      expect((await approve('pete')).json()).toMatchObject({ status: 'approved', approvals: 2 });
      const collected = await send('quinn', ['investigator'], { url: `/reveal-requests/${id}` });
      expect(collected.json()).toMatchObject({ status: 'collected', results: [{ value: '222-33-4444' }] });
      expect(await verifyHashChain(twoHarness.testDb.owner.pool)).toMatchObject({ ok: true });
    } finally {
      await twoHarness.close();
    }
  });
});
