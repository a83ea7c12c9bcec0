import { describe, expect } from 'vitest';
import { freshRevealTestFor } from '../../../support/reveal-fixture.js';
import { bearer, PURPOSE, type RevealHarness, type SeededValue } from '../../../support/reveal-harness.js';

// Reading the log appends to it (audit_read): each test reads a fresh one.
const it = freshRevealTestFor();

// The test's own harness, bound for the helpers below.
let harness: RevealHarness;
let ip: SeededValue;
let device: SeededValue;
let auditor: Record<string, string>;

it.beforeEach(async ({ harness: fresh, sample }) => {
  harness = fresh;
  ({ ip, device } = sample);
  auditor = bearer(await harness.token('audrey', ['auditor']));
  const alice = bearer(await harness.token('alice', ['investigator']));
  const bob = bearer(await harness.token('bob', ['support']));
  for (let index = 0; index < 5; index += 1) {
    await harness.app.inject({ method: 'POST', url: '/reveal', headers: alice, payload: { tokens: [ip.token], purpose: PURPOSE } });
  }
  await harness.app.inject({ method: 'POST', url: '/reveal', headers: bob, payload: { tokens: [device.token], purpose: PURPOSE } });
  await harness.app.inject({ method: 'POST', url: '/tokenize', headers: bob, payload: { field: 'ip', values: ['10.0.0.1'] } });
});

interface Entry {
  seq: number;
  actor: string | null;
  action: string;
  outcome: string;
  tokens: string[];
  occurred_at: string;
  hash: string;
}

async function read(query: string) {
  const response = await harness.app.inject({ url: `/audit${query}`, headers: auditor });
  expect(response.statusCode).toBe(200);
  return response.json() as { entries: Entry[]; next_cursor?: string };
}

describe('GET /audit', () => {
  it('lists entries newest first with hashes', async () => {
    const { entries } = await read('');
    expect(entries.map((entry) => entry.seq)).toEqual([...entries.map((entry) => entry.seq)].sort((a, b) => b - a));
    expect(entries[0]).toMatchObject({ action: 'tokenize', actor: 'bob', outcome: 'denied', hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(entries[0]?.occurred_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // Named as the export and the canonical form name the columns (docs/audit-format.md).
    expect(Object.keys(entries[0] ?? {}).sort()).toEqual(
      ['action', 'actor', 'client_address', 'field_counts', 'hash', 'occurred_at', 'outcome', 'prev_hash', 'purpose', 'reason', 'request_id', 'roles', 'seq', 'ticket', 'tokens'],
    );
  });

  it('filters by actor, token, outcome, action and time range', async () => {
    expect((await read('?actor=alice')).entries.every((entry) => entry.actor === 'alice')).toBe(true);
    expect((await read('?actor=alice')).entries).toHaveLength(5);
    expect((await read(`?token=${device.token}`)).entries.map((entry) => entry.actor)).toEqual(['bob']);
    expect((await read('?outcome=denied')).entries.map((entry) => entry.action)).toEqual(['tokenize']);
    expect((await read('?action=tokenize')).entries).toHaveLength(1);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect((await read(`?from=${future}`)).entries).toHaveLength(0);
    expect((await read(`?actor=alice&to=${future}`)).entries).toHaveLength(5);
  });

  it('paginates with an opaque cursor until the end', async () => {
    const seen: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await read(`?actor=alice&limit=2${cursor === undefined ? '' : `&cursor=${cursor}`}`);
      expect(page.entries.length).toBeLessThanOrEqual(2);
      seen.push(...page.entries.map((entry) => entry.seq));
      cursor = page.next_cursor;
    } while (cursor !== undefined);
    expect(seen).toHaveLength(5);
    expect(new Set(seen).size).toBe(5);
  });

  it('rejects a forged cursor and a limit above 200', async () => {
    expect((await harness.app.inject({ url: '/audit?cursor=not-a-cursor', headers: auditor })).statusCode).toBe(400);
    expect((await harness.app.inject({ url: '/audit?limit=201', headers: auditor })).statusCode).toBe(400);
    expect((await harness.app.inject({ url: '/audit?from=yesterday', headers: auditor })).statusCode).toBe(400);
  });

  it.each([
    ['from', '?from=0000-01-01T00:00:00Z', /^from: year 0000 does not exist/],
    ['to', '?to=0000-12-31T23:59:59%2B01:00', /^to: year 0000 does not exist/],
    ['actor', '?actor=%00', /^actor: contains a NUL character .*cannot be stored/],
    ['outcome', '?outcome=%00', /^outcome: contains a NUL character/],
    ['token', '?token=ip_v1_%00', /^token: contains a NUL character/],
    ['action', '?action=reveal%0A', /^action: must not contain control characters/],
  ])('answers 400, not 500, to a %s PostgreSQL would refuse, and audits it with the caller', async (_name, query, message) => {
    const response = await harness.app.inject({ url: `/audit${query}`, headers: auditor });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ error: { code: 'invalid_request', message: expect.stringMatching(message) } });
    const { entries } = await read('?action=audit_read&limit=1');
    expect(entries[0]).toMatchObject({ actor: 'audrey', outcome: 'invalid' });
  });

  it('accepts the widest dates PostgreSQL holds (0001 and 9999, with offsets)', async () => {
    const { entries } = await read('?actor=alice&from=0001-01-01T00:00:00%2B01:00&to=9999-12-31T23:59:59-12:00');
    expect(entries).toHaveLength(5);
  });

  it('audits who read the audit log', async () => {
    await read('?actor=alice');
    const { entries } = await read('?action=audit_read&limit=1');
    expect(entries[0]).toMatchObject({ actor: 'audrey', action: 'audit_read', outcome: 'allowed' });
  });
});
