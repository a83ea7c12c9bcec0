import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { beforeEach, describe, expect } from 'vitest';
import { chainHash, type AuditContent, type AuditRow } from '../../../../lib/audit/chain.js';
import { auditLeafHash } from '../../../../lib/audit/merkle/audit-leaf.js';
import { CompactRange } from '../../../../lib/audit/merkle/compact-range.js';
import { backfillAuditTree } from '../../../../lib/audit/tree-backfill.js';
import { proveApproval } from '../../../../services/reveal-api/approvals/chain-proof.js';
import type { ChainStep, RevealRequest } from '../../../../services/reveal-api/approvals/store.js';
import { verifyHashChain } from '../../../../lib/audit/hash-chain-verifier.js';
import { ROW_COLUMNS, toRow, type RawRow } from '../../../../lib/audit/reader.js';
import type { RevealApp } from '../../../../services/reveal-api/app.js';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE, writePolicyFile, type RevealHarness, type SeededValue } from '../../../support/reveal-harness.js';
import { tamperAuditLog } from '../../../support/tamper-audit-log.js';

/**
 * Finding 2 of issue 16, as the database owner: a four-eyes request must not be approvable by
 * editing reveal_requests. Collection derives what it relies on (the request's tokens, the
 * approvals required, the approvers) from the audit chain, and refuses a request row the chain
 * does not back with 409 approval_unverified, an error log line and a metric.
 */
const POLICY = {
  roles: {
    investigator: { reveal: { ip: 'plain', device_id: 'plain' }, approval: { fields: ['device_id'], above: 2 } },
    approver: { approve: true },
    auditor: { audit: true },
  },
  approval: { ttl_seconds: 600, approvers_required: 1 },
};

const it = revealTestFor(
  {
    policy: POLICY,
    env: (dir) => ({ AUDIT_SIGNING_KEY_FILE: join(dir, 'signing-key.pem'), AUDIT_CHECKPOINT_INTERVAL_SECONDS: '0', AUDIT_CHECKPOINT_LOG: 'false' }),
    seed: Array.from({ length: 100 }, (_, index) =>
      index % 2 === 0 ? { field: 'ip' as const, value: `10.9.${Math.floor(index / 200)}.${(index % 200) + 1}` } : { field: 'device_id' as const, value: `700-11-${String(1000 + index)}` },
    ),
  },
  { timeout: 120_000 },
);

// The file's shared harness and its 100 values, bound once for the helpers below.
let harness: RevealHarness;
let app: RevealApp;
let values: SeededValue[];
it.beforeAll(({ harness: shared, seeded }) => {
  harness = shared;
  app = harness.app;
  values = seeded;
});
beforeEach(() => {
  harness.logs.length = 0;
});

const owner = () => harness.testDb.owner.pool;
const tokenOf = (index: number) => (values[index] as SeededValue).token;
const as = async (sub: string, roles: string[]) => bearer(await harness.token(sub, roles));

async function requestReveal(sub: string, tokens: string[]): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/reveal', headers: await as(sub, ['investigator']), payload: { tokens, purpose: PURPOSE, ticket: 'CASE-16' } });
  expect(response.statusCode).toBe(202);
  return response.json<{ request_id: string }>().request_id;
}
const approve = async (id: string, sub: string) =>
  app.inject({ method: 'POST', url: `/approvals/${id}`, headers: await as(sub, ['approver']), payload: { decision: 'approve', reason: 'checked the case file' } });
const collect = async (id: string, sub: string) => app.inject({ url: `/reveal-requests/${id}`, headers: await as(sub, ['investigator']) });

async function unverifiedCount(): Promise<number> {
  const body = (await app.inject({ url: '/metrics' })).body;
  return [...body.matchAll(/^tokenvault_approval_unverified_total\{[^}]*\} (\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}

/** The refusal: 409 approval_unverified, nothing revealed, an error line, the metric, and the refusal's own audit row. */
async function expectUnverified(id: string, sub: string, revealed: string[]) {
  const before = await unverifiedCount();
  const response = await collect(id, sub);
  expect(response.statusCode).toBe(409);
  expect(response.json().error.code).toBe('approval_unverified');
  for (const value of revealed) expect(response.body).not.toContain(value);
  expect(await unverifiedCount()).toBe(before + 1);
  const errors = harness.logs.map((line) => JSON.parse(line) as { level: number; msg: string; request_id?: string }).filter((line) => line.level >= 50);
  expect(errors).toContainEqual(expect.objectContaining({ msg: expect.stringContaining('approval_unverified'), request_id: id }));
  expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ action: 'reveal.collect', actor: sub, outcome: 'denied', request_id: id, reason: expect.stringMatching(/^approval_unverified /) });
}

describe('collection of a four-eyes request edited by the database owner', () => {
  it('refuses a request the owner set to approved with approvals_required = 0 (409 approval_unverified)', async () => {
    const id = await requestReveal('nina', [tokenOf(1), tokenOf(3), tokenOf(5)]);
    await owner().query("UPDATE reveal_requests SET status = 'approved', approvals_required = 0 WHERE id = $1", [id]);
    await expectUnverified(id, 'nina', [values[1]!.value]);
  });

  it('refuses a request row the owner inserted from scratch (100 tokens, approvals_required = 0, no reveal.request row)', async () => {
    const id = randomUUID();
    const tokens = values.map((value) => value.token);
    await owner().query(
      `INSERT INTO reveal_requests (id, requester, roles, purpose, ticket, tokens, field_counts, approvals_required, approvals, status, created_at, expires_at, decided_at)
       VALUES ($1, 'oscar', '{investigator}', $2, 'CASE-16', $3, '{"ip":50,"device_id":50}', 0, '[]', 'approved', now(), now() + interval '10 minutes', now())`,
      [id, PURPOSE, tokens],
    );
    await expectUnverified(
      id,
      'oscar',
      values.map((value) => value.value),
    );
  });

  it('refuses a request whose tokens the owner swapped after the approval', async () => {
    const id = await requestReveal('paula', [tokenOf(1), tokenOf(3), tokenOf(5)]);
    expect((await approve(id, 'olga')).statusCode).toBe(200);
    await owner().query('UPDATE reveal_requests SET tokens = $2 WHERE id = $1', [id, [tokenOf(7), tokenOf(9), tokenOf(11)]]);
    await expectUnverified(id, 'paula', [values[7]!.value, values[1]!.value]);
  });

  it('refuses a second collection after the owner set a collected request back to approved', async () => {
    const id = await requestReveal('quentin', [tokenOf(13)]);
    expect((await approve(id, 'olga')).statusCode).toBe(200);
    expect((await collect(id, 'quentin')).statusCode).toBe(200);
    await owner().query("UPDATE reveal_requests SET status = 'approved', collected_at = NULL WHERE id = $1", [id]);
    await expectUnverified(id, 'quentin', [values[13]!.value]);
  });

  it('refuses a request the owner moved to another requester', async () => {
    const id = await requestReveal('rosa', [tokenOf(15)]);
    expect((await approve(id, 'olga')).statusCode).toBe(200);
    await owner().query("UPDATE reveal_requests SET requester = 'mallet' WHERE id = $1", [id]);
    await expectUnverified(id, 'mallet', [values[15]!.value]);
  });

  it('does not count approvals the owner wrote into the approvals column', async () => {
    const id = await requestReveal('sam', [tokenOf(17)]);
    await owner().query(
      `UPDATE reveal_requests SET status = 'approved', approvals = '[{"approver":"olga","reason":"ok","at":"2026-01-01T00:00:00.000Z"}]' WHERE id = $1`,
      [id],
    );
    await expectUnverified(id, 'sam', [values[17]!.value]);
  });

  it('sends a request back to the approvers when the policy now asks for more approvals than it had (not tampering)', async () => {
    const id = await requestReveal('yara', [tokenOf(31)]);
    expect((await approve(id, 'olga')).statusCode).toBe(200);
    const stricter = await harness.buildApp({ POLICY_FILE: await writePolicyFile({ ...POLICY, approval: { ttl_seconds: 600, approvers_required: 2 } }) });
    const before = await unverifiedCount();
    const early = await stricter.inject({ url: `/reveal-requests/${id}`, headers: await as('yara', ['investigator']) });
    expect(early.statusCode).toBe(409);
    expect(early.json().error.code).toBe('more_approvals_required');
    expect(early.body).not.toContain(values[31]!.value);
    expect(await unverifiedCount()).toBe(before);
    const listed = await stricter.inject({ url: '/approvals', headers: await as('pete', ['approver']) });
    expect(listed.json().requests.find((item: { id: string }) => item.id === id)).toMatchObject({ approvals: [{ approver: 'olga' }], approvals_required: 2 });
    const second = await stricter.inject({ method: 'POST', url: `/approvals/${id}`, headers: await as('pete', ['approver']), payload: { decision: 'approve', reason: 'second look' } });
    expect(second.json()).toMatchObject({ status: 'approved', approvals: 2, approvals_required: 2 });
    const collected = await stricter.inject({ url: `/reveal-requests/${id}`, headers: await as('yara', ['investigator']) });
    expect(collected.statusCode).toBe(200);
    expect(collected.json()).toMatchObject({ status: 'collected', results: [{ value: values[31]!.value }] });
  });

  it('still collects a request whose chain matches (and counts only distinct approvers who are not the requester)', async () => {
    const id = await requestReveal('tina', [tokenOf(19), tokenOf(21)]);
    expect((await approve(id, 'olga')).statusCode).toBe(200);
    const collected = await collect(id, 'tina');
    expect(collected.statusCode).toBe(200);
    expect(collected.json()).toMatchObject({ status: 'collected', results: [{ value: values[19]!.value }, { value: values[21]!.value }] });
  });
});

describe('what the chain proves about a request (proveApproval)', () => {
  const tokens = ['ip_v1_a', 'ip_v1_b'];
  const stored = { id: 'r1', requester: 'ann', tokens, approvalsRequired: 1, purpose: PURPOSE, ticket: null } as unknown as RevealRequest;
  let seq = 0;
  let prev: Buffer | null = null;
  /** A well-linked chain of rows about request r1. */
  const chain = (...rows: Partial<AuditContent>[]): ChainStep[] => {
    seq = 0;
    prev = null;
    const linked: AuditRow[] = rows.map((row) => {
      seq += 1;
      const content: AuditContent = {
        seq,
        occurredAt: `2026-01-01T00:00:0${seq}.000Z`,
        action: 'approval.approve',
        actor: 'olga',
        roles: [],
        clientAddress: null,
        requestId: 'r1',
        purpose: PURPOSE,
        ticket: null,
        tokens,
        fieldCounts: {},
        outcome: 'allowed',
        reason: 'ok',
        prevHash: prev,
        ...row,
      };
      const hash = chainHash(content);
      prev = hash;
      return { ...content, hash };
    });
    return linked.map((row, index) => ({ row, nextPrevHash: linked[index + 1]?.prevHash }));
  };
  const request = { action: 'reveal.request', actor: 'ann', outcome: 'pending', reason: 'pending_approval approvals_required=1' };

  it('counts distinct approvers who approved exactly the request, never the requester, and dates the approval', () => {
    const proof = proveApproval(
      stored,
      chain(request, { actor: 'ann' }, { actor: 'olga', tokens: ['ip_v1_a'] }, { actor: 'olga', purpose: 'something else' }, { actor: 'olga' }, { actor: 'olga' }),
      1,
    );
    expect(proof).toEqual({ ok: true, tokens, approvers: ['olga'], required: 1, approvedAt: '2026-01-01T00:00:05.000Z' });
  });

  it('names what does not match', () => {
    const detail = (steps: ChainStep[], policy = 1) => {
      const proof = proveApproval(stored, steps, policy);
      return proof.ok ? 'ok' : proof.kind === 'unverified' ? proof.detail : `policy_raised ${proof.approvals}/${proof.required}`;
    };
    expect(detail(chain({ actor: 'olga' }))).toBe('no_request_row');
    expect(detail(chain(request, request, { actor: 'olga' }))).toBe('several_request_rows');
    expect(detail(chain({ ...request, actor: 'bob' }, { actor: 'olga' }))).toBe('requester_differs');
    expect(detail(chain({ ...request, tokens: ['ip_v1_b', 'ip_v1_a'] }, { actor: 'olga' }))).toBe('tokens_differ');
    expect(detail(chain({ ...request, reason: 'pending_approval approvals_required=2' }, { actor: 'olga' }, { actor: 'pete' }))).toBe('approvals_required_differs');
    expect(detail(chain(request))).toBe('approvals_missing approvals=0 required=1');
    expect(detail(chain(request, { actor: 'olga' }, { action: 'approval.deny', actor: 'pete' }))).toBe('denied_in_chain');
    expect(detail(chain(request, { actor: 'olga' }, { action: 'reveal.collect', actor: 'ann' }))).toBe('collected_in_chain');
    expect(detail(chain(request, { actor: 'olga' }, { action: 'reveal.collect', actor: 'ann', outcome: 'denied' }))).toBe('ok');
    expect(detail(chain(request, { actor: 'olga' }, { action: 'reveal.expire', actor: null }))).toBe('expired_in_chain');
    expect(detail(chain(request, { actor: 'olga' }), 2)).toBe('policy_raised 1/2');
    const edited = chain(request, { actor: 'olga' });
    edited[1]!.row.reason = 'edited after the fact';
    expect(detail(edited)).toBe('approval_row_altered seq=2');
    const unlinked = chain(request, { actor: 'olga' });
    unlinked[0]!.nextPrevHash = Buffer.alloc(32);
    expect(detail(unlinked)).toBe('request_row_altered seq=1');
  });
});

/**
 * Inserts a forged `approval.approve` row right after the request's `reveal.request` row (later
 * rows move up by one), its hash computed with the project's own chainHash. `relinkTail`: also
 * recompute every later row, as an owner who knows how the chain works would.
 */
async function forgeApproval(id: string, approver: string, relinkTail: boolean) {
  await tamperAuditLog(owner(), async (client) => {
    const { rows } = await client.query<RawRow>(`SELECT ${ROW_COLUMNS} FROM audit_log WHERE request_id = $1 AND action = 'reveal.request'`, [id]);
    const request = toRow(rows[0] as RawRow);
    await client.query('UPDATE audit_log SET seq = -(seq + 1) WHERE seq > $1', [request.seq]);
    await client.query('UPDATE audit_log SET seq = -seq WHERE seq < 0');
    const forged: AuditContent = {
      ...request,
      seq: request.seq + 1,
      action: 'approval.approve',
      actor: approver,
      roles: ['approver'],
      outcome: 'allowed',
      reason: 'looks fine',
      prevHash: request.hash,
    };
    const hash = chainHash(forged);
    await client.query(
      `INSERT INTO audit_log (seq, occurred_at, action, actor, roles, client_address, request_id, purpose, ticket, tokens, field_counts, outcome, reason, prev_hash, hash)
       VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
      [forged.seq, forged.occurredAt, forged.action, forged.actor, forged.roles, forged.clientAddress, forged.requestId, forged.purpose, forged.ticket, forged.tokens, JSON.stringify(forged.fieldCounts), forged.outcome, forged.reason, forged.prevHash, hash],
    );
    if (!relinkTail) return;
    const { rows: tail } = await client.query<RawRow>(`SELECT ${ROW_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq`, [forged.seq]);
    let prev = hash;
    for (const raw of tail) {
      const next = chainHash({ ...toRow(raw), prevHash: prev });
      await client.query('UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE seq = $1', [raw.seq, prev, next]);
      prev = next;
    }
  });
  await owner().query("UPDATE reveal_requests SET status = 'approved', approvals = $2 WHERE id = $1", [id, JSON.stringify([{ approver, reason: 'looks fine', at: new Date().toISOString() }])]);
}

describe('an approval row forged into the audit log by the database owner', () => {
  it('is refused when the rows after it were not re-linked: the chain link is checked where collection relies on it', async () => {
    const id = await requestReveal('uma', [tokenOf(23)]);
    await requestReveal('vera', [tokenOf(25)]); // a row after the request's, which the forgery displaces
    await forgeApproval(id, 'olga', false);
    try {
      await expectUnverified(id, 'uma', [values[23]!.value]);
      expect((await verifyHashChain(owner())).ok).toBe(false);
    } finally {
      await restoreChain();
    }
  });

  it('passes the chain checks when every later hash is recomputed: only a signed checkpoint over the rewritten rows exposes it', async () => {
    const id = await requestReveal('walt', [tokenOf(27)]);
    await requestReveal('xena', [tokenOf(29)]);
    expect((await app.auditCheckpointer!.checkpointNow()).status).toBe('written');
    await forgeApproval(id, 'olga', true);
    // The hash chain alone cannot tell: it verifies, and collection, which checks rows and links, reveals.
    expect((await verifyHashChain(owner())).ok).toBe(true);
    expect((await collect(id, 'walt')).statusCode).toBe(200);
    // The forged row left the log one row longer than its Merkle tree; the reveal-api's background
    // catch-up appends the missing leaf (run here, so the test does not wait on its timing).
    await backfillAuditTree(owner(), { batchRows: 5_000, lockTimeoutMs: 10_000 });
    // The checkpoint signed before the forgery no longer matches its row: every verifier says so, and the checkpointer refuses to sign.
    const verdict = await app.inject({ url: '/audit/verify', headers: await as('audra', ['auditor']) });
    expect(verdict.json()).toMatchObject({ ok: false });
    expect((await app.auditCheckpointer!.checkpointNow()).status).toBe('refused');
  });
});

/**
 * Re-links the chain after a test that left it broken, and rebuilds the Merkle tree over the
 * re-linked rows (their leaves changed with their prev_hash), so later tests start from an intact
 * log that the checkpointer signs.
 */
async function restoreChain() {
  await tamperAuditLog(owner(), async (client) => {
    const { rows } = await client.query<RawRow>(`SELECT ${ROW_COLUMNS} FROM audit_log ORDER BY seq`);
    let prev: Buffer | null = null;
    const range = CompactRange.empty();
    const nodes = [];
    for (const raw of rows) {
      const content = { ...toRow(raw), prevHash: prev };
      const hash = chainHash(content);
      await client.query('UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE seq = $1', [raw.seq, prev, hash]);
      nodes.push(...range.append(auditLeafHash(content)));
      prev = hash;
    }
    await client.query('DELETE FROM audit_tree_nodes');
    await client.query('INSERT INTO audit_tree_nodes (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])', [
      nodes.map((node) => node.level),
      nodes.map((node) => node.index),
      nodes.map((node) => node.hash),
    ]);
  });
}
