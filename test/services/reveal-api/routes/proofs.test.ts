import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { auditLeafHash } from '../../../../lib/audit/merkle/audit-leaf.js';
import { MemoryMerkleTree } from '../../../../lib/audit/merkle/memory-tree.js';
import { verifyConsistency, verifyInclusion } from '../../../../lib/audit/merkle/verify.js';
import { readAuditRows } from '../../../../lib/audit/reader.js';
import type { RevealApp } from '../../../../services/reveal-api/app.js';
import { freshRevealTest, revealTestFor, type RevealSetup } from '../../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE, type RevealHarness, type SeededValue } from '../../../support/reveal-harness.js';

const POLICY = {
  roles: {
    investigator: { reveal: { ip: 'plain', device_id: 'plain' }, approval: { fields: ['device_id'] } },
    approver: { approve: true },
    auditor: { audit: true },
    'privacy-officer': { erase: ['ip', 'device_id'], person: { access: { ip: 'plain', device_id: 'plain' }, erase: true } },
  },
  approval: { ttl_seconds: 600, approvers_required: 1 },
};
const ANNA = 'a0000000-0000-4000-8000-000000000001';
const BEN = 'b0000000-0000-4000-8000-000000000002';
const DSR = { purpose: 'data subject request under GDPR art. 15/17', ticket: 'DSR-2024-117' };

const SETUP: RevealSetup = {
  policy: POLICY,
  env: (dir) => ({ AUDIT_SIGNING_KEY_FILE: join(dir, 'signing-key.pem'), AUDIT_CHECKPOINT_INTERVAL_SECONDS: '0', AUDIT_CHECKPOINT_LOG: 'false' }),
  seed: [
    { field: 'ip', value: '203.0.113.10' },
    { field: 'device_id', value: '123-45-6789' },
    { field: 'ip', value: '198.51.100.77' },
  ],
};
const it = revealTestFor(SETUP, { timeout: 120_000 });

// The file's shared harness, bound once for the helpers below.
let harness: RevealHarness;
let app: RevealApp;
let annaIp: SeededValue;
let annaDevice: SeededValue;
let benIp: SeededValue;

// Anna and Ben logged in once each, in months of their own.
it.beforeAll(async ({ harness: shared, seeded }) => {
  harness = shared;
  app = harness.app;
  [annaIp, annaDevice, benIp] = seeded as [SeededValue, SeededValue, SeededValue];
  for (const [messageId, userId, ip, sentAt] of [
    ['m-anna-1', ANNA, annaIp.token, '2024-02-10T09:00:00Z'],
    ['m-ben-1', BEN, benIp.token, '2024-03-06T09:00:00Z'],
  ]) {
    await harness.testDb.owner.pool.query(
      `INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version, create_date, sent_at, token_key_version)
       VALUES ($1, $2, 'ios', $3, $4, 'RU', '2.3.0', ($5::timestamptz AT TIME ZONE 'UTC')::date, $5, 1)`,
      [messageId, userId, ip, annaDevice.token, sentAt],
    );
  }
  await harness.testDb.owner.pool.query(`SELECT user_logins_prepare_month('2024-02-01'), user_logins_prepare_month('2024-03-01')`);
});

const as = async (sub: string, roles: string[]) => bearer(await harness.token(sub, roles));
const auditor = () => as('audrey', ['auditor']);
const reveal = async (sub: string, tokens: string[]) => app.inject({ method: 'POST', url: '/reveal', headers: await as(sub, ['investigator']), payload: { tokens, purpose: PURPOSE } });
const b64 = (value: string) => Buffer.from(value, 'base64');

/** At least `count` entries in the log, whichever tests ran before. */
async function atLeastEntries(count: number): Promise<void> {
  for (let index = 0; index < count; index += 1) expect((await reveal('ivan', [annaIp.token])).statusCode).toBe(200);
}

/** A reveal of `tokens` through four eyes: requested, approved by olga, collected. */
async function revealApproved(sub: string, tokens: string[]): Promise<void> {
  const requested = await reveal(sub, tokens);
  expect(requested.statusCode).toBe(202);
  const id = requested.json<{ request_id: string }>().request_id;
  await app.inject({ method: 'POST', url: `/approvals/${id}`, headers: await as('olga', ['approver']), payload: { decision: 'approve', reason: 'case file checked' } });
  expect((await app.inject({ url: `/reveal-requests/${id}`, headers: await as(sub, ['investigator']) })).statusCode).toBe(200);
}

async function memoryTree(): Promise<MemoryMerkleTree> {
  const tree = new MemoryMerkleTree();
  for await (const page of readAuditRows(harness.testDb.owner.pool)) for (const row of page) tree.appendLeafHash(auditLeafHash(row));
  return tree;
}

interface Inclusion {
  tree_size: number;
  leaf_index: number;
  leaf_hash: string;
  proof: string[];
  root: string;
}
interface Receipt {
  seq: number;
  entry: { seq: number; actor: string | null; action: string; hash: string };
  canonical: string;
  leaf_hash: string;
  inclusion: Inclusion | null;
  checkpoint: { index: number; tree_size: number } | null;
  note?: string;
}

/** What an outsider does with a receipt: recompute the leaf from the canonical bytes, fold the proof, compare with a root they hold. */
function receiptHolds(receipt: Receipt, root: Buffer): boolean {
  const leaf = createHash('sha256').update(Buffer.from([0])).update(receipt.canonical, 'utf8').digest();
  if (!leaf.equals(b64(receipt.leaf_hash)) || receipt.inclusion === null) return false;
  return verifyInclusion(receipt.seq - 1, receipt.inclusion.tree_size, leaf, receipt.inclusion.proof.map(b64), root);
}

describe('receipts: every response names its audit entry', () => {
  it('a reveal, a collection, an erasure, a person erasure and a refusal each name the seq of their committed row', async () => {
    const revealed = await reveal('ivan', [annaIp.token]);
    expect(revealed.statusCode).toBe(200);
    const seq = revealed.json<{ audit_seq: number }>().audit_seq;
    expect(revealed.headers['x-audit-seq']).toBe(String(seq));
    expect((await auditRows(harness.testDb)).find((row) => row.seq === seq)).toMatchObject({ action: 'reveal', actor: 'ivan', request_id: revealed.headers['x-request-id'] });

    // Four-eyes: the 202 names the request's row, the collection its reveal.collect row.
    const requested = await reveal('ivan', [annaDevice.token]);
    expect(requested.statusCode).toBe(202);
    const id = requested.json<{ request_id: string; audit_seq: number }>().request_id;
    expect((await auditRows(harness.testDb)).find((row) => row.seq === requested.json<{ audit_seq: number }>().audit_seq)).toMatchObject({ action: 'reveal.request', request_id: id });
    const pending = await app.inject({ url: `/reveal-requests/${id}`, headers: await as('ivan', ['investigator']) });
    expect(pending.json()).not.toHaveProperty('audit_seq');
    expect(pending.headers['x-audit-seq']).toBeUndefined();
    const approved = await app.inject({ method: 'POST', url: `/approvals/${id}`, headers: await as('olga', ['approver']), payload: { decision: 'approve', reason: 'case file checked' } });
    expect(approved.headers['x-audit-seq']).toMatch(/^[0-9]+$/);
    const collected = await app.inject({ url: `/reveal-requests/${id}`, headers: await as('ivan', ['investigator']) });
    expect(collected.statusCode).toBe(200);
    const collectSeq = collected.json<{ audit_seq: number }>().audit_seq;
    expect(collected.headers['x-audit-seq']).toBe(String(collectSeq));
    expect((await auditRows(harness.testDb)).find((row) => row.seq === collectSeq)).toMatchObject({ action: 'reveal.collect', actor: 'ivan', outcome: 'allowed', request_id: id });
    // A refusal committed with its row names it too (409 already_collected).
    const again = await app.inject({ url: `/reveal-requests/${id}`, headers: await as('ivan', ['investigator']) });
    expect(again.statusCode).toBe(409);
    expect((await auditRows(harness.testDb)).find((row) => row.seq === Number(again.headers['x-audit-seq']))).toMatchObject({ action: 'reveal.collect', outcome: 'denied', reason: 'already_collected' });

    const erased = await app.inject({ method: 'POST', url: '/erase', headers: await as('pia', ['privacy-officer']), payload: { tokens: [benIp.token], purpose: PURPOSE } });
    expect((await auditRows(harness.testDb)).find((row) => row.seq === erased.json<{ audit_seq: number }>().audit_seq)).toMatchObject({ action: 'erase', actor: 'pia' });
    const forbidden = await app.inject({ method: 'POST', url: '/erase', headers: await as('mallory', ['investigator']), payload: { tokens: [benIp.token], purpose: PURPOSE } });
    expect(forbidden.statusCode).toBe(403);
    expect((await auditRows(harness.testDb)).find((row) => row.seq === Number(forbidden.headers['x-audit-seq']))).toMatchObject({ action: 'erase', actor: 'mallory', outcome: 'denied' });

    const person = await app.inject({ method: 'POST', url: '/persons/erase', headers: await as('pia', ['privacy-officer']), payload: { user_id: BEN, ...DSR } });
    expect(person.statusCode).toBe(200);
    expect(person.headers['x-audit-seq']).toBe(String(person.json<{ audit_seq: number }>().audit_seq));
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ seq: person.json<{ audit_seq: number }>().audit_seq, action: 'person.erase', actor: 'pia' });
  });
});

describe('GET /audit/entries/{seq}', () => {
  // On a log of its own: no checkpoint is signed there, whichever tests ran before (the shared log gets checkpoints).
  const alone = freshRevealTest.override('revealSetup', SETUP);
  alone('before any checkpoint: the entry and its canonical bytes, no proof yet, said in plain words', async ({ harness: own, sample: { ip } }) => {
    const ivan = bearer(await own.token('ivan', ['investigator']));
    const revealOnce = async () => (await own.app.inject({ method: 'POST', url: '/reveal', headers: ivan, payload: { tokens: [ip.token], purpose: PURPOSE } })).json<{ audit_seq: number }>().audit_seq;
    await revealOnce(); // A row before it, so its prev_hash links to something.
    const seq = await revealOnce();
    const response = await own.app.inject({ url: `/audit/entries/${seq}`, headers: ivan });
    expect(response.statusCode).toBe(200);
    const receipt = response.json<Receipt>();
    expect(receipt).toMatchObject({ seq, entry: { seq, actor: 'ivan', action: 'reveal' }, inclusion: null, checkpoint: null });
    expect(receipt.note).toBe('not yet covered by a signed checkpoint: no checkpoint has been signed yet');
    // The leaf is the row's canonical form: every column but its own hash (prev_hash included).
    expect(JSON.parse(receipt.canonical)).toMatchObject({ seq, actor: 'ivan', prev_hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(JSON.parse(receipt.canonical)).not.toHaveProperty('hash');
    // A proof without a size has nothing to prove to yet: the refusal says when, and which parameter to name instead.
    const auditor = bearer(await own.token('audrey', ['auditor']));
    const consistency = await own.app.inject({ url: '/audit/proofs/consistency?from=1', headers: auditor });
    expect(consistency.statusCode).toBe(409);
    expect(consistency.json()).toMatchObject({ error: { code: 'no_signed_checkpoint', message: expect.stringContaining('?to=N') } });
  });

  it('after a checkpoint: an inclusion proof that checks out against the root recomputed from the rows, for the actor and for an auditor', async () => {
    const seq = (await reveal('ivan', [annaIp.token])).json<{ audit_seq: number }>().audit_seq;
    expect((await app.auditCheckpointer!.checkpointNow()).status).toBe('written');
    const memory = await memoryTree();
    for (const headers of [await as('ivan', ['investigator']), await auditor()]) {
      const response = await app.inject({ url: `/audit/entries/${seq}`, headers });
      expect(response.statusCode).toBe(200);
      const receipt = response.json<Receipt>();
      const size = receipt.checkpoint!.tree_size;
      expect(receipt.inclusion).toMatchObject({ tree_size: size, leaf_index: seq - 1 });
      expect(b64(receipt.inclusion!.root).equals(memory.root(size))).toBe(true);
      expect(receiptHolds(receipt, memory.root(size))).toBe(true);
      // A receipt whose canonical bytes were changed does not hold.
      expect(receiptHolds({ ...receipt, canonical: receipt.canonical.replace('"ivan"', '"eve"') }, memory.root(size))).toBe(false);
      // Reading it is audited, and the answer names that row.
      expect((await auditRows(harness.testDb)).find((row) => row.seq === Number(response.headers['x-audit-seq']))).toMatchObject({ action: 'audit_read', reason: `entry seq=${seq}` });
    }
  });

  it("refuses someone else's entry (403, audited), answers 404 for an entry that does not exist, proves to an older size on request", async () => {
    await atLeastEntries(3);
    const seq = (await reveal('ivan', [annaIp.token])).json<{ audit_seq: number }>().audit_seq;
    const other = await app.inject({ url: `/audit/entries/${seq}`, headers: await as('mallory', ['investigator']) });
    expect(other.statusCode).toBe(403);
    expect(other.body).not.toContain(annaIp.token);
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ action: 'audit_read', actor: 'mallory', outcome: 'denied', reason: `entry seq=${seq}: not the actor` });
    expect((await app.inject({ url: '/audit/entries/999999', headers: await auditor() })).statusCode).toBe(404);
    const older = await app.inject({ url: `/audit/entries/1?tree_size=3`, headers: await auditor() });
    expect(older.json<Receipt>().inclusion).toMatchObject({ tree_size: 3, leaf_index: 0 });
    expect(receiptHolds(older.json<Receipt>(), (await memoryTree()).root(3))).toBe(true);
  });
});

describe('GET /audit/proofs/inclusion and /audit/proofs/consistency', () => {
  it('prove an entry to the newest signed checkpoint by default, refuse an uncovered one, and prove two checkpoints consistent', async () => {
    await atLeastEntries(1);
    await app.auditCheckpointer!.checkpointNow();
    const first = (await app.inject({ url: '/audit/proofs/consistency?from=0', headers: await auditor() })).json<{ to: number; checkpoint: { index: number; tree_size: number } }>();
    const seq = (await reveal('ivan', [annaIp.token])).json<{ audit_seq: number }>().audit_seq;
    const uncovered = await app.inject({ url: `/audit/proofs/inclusion?seq=${seq}`, headers: await auditor() });
    expect(uncovered.statusCode).toBe(409);
    expect(uncovered.json().error).toEqual({ code: 'not_covered', message: expect.stringMatching(new RegExp(`newest \\(index ${first.checkpoint.index}\\) covers entries 1\\.\\.${first.to}; entry ${seq} will be in the next one`)) });

    await app.auditCheckpointer!.checkpointNow();
    const memory = await memoryTree();
    const response = await app.inject({ url: `/audit/proofs/inclusion?seq=${seq}`, headers: await auditor() });
    expect(response.statusCode).toBe(200);
    const proof = response.json<Inclusion & { seq: number; checkpoint: { index: number; tree_size: number } }>();
    expect(proof.checkpoint.index).toBe(first.checkpoint.index + 1);
    expect(proof.tree_size).toBe(proof.checkpoint.tree_size);
    expect(b64(proof.leaf_hash).equals(memory.store.getNodesSync([{ level: 0, index: seq - 1 }])[0]!)).toBe(true);
    expect(verifyInclusion(seq - 1, proof.tree_size, b64(proof.leaf_hash), proof.proof.map(b64), memory.root(proof.tree_size))).toBe(true);

    // Any verified caller may check that the checkpoint their receipt names grew into the newest one.
    const consistency = await app.inject({ url: `/audit/proofs/consistency?from=${first.to}`, headers: await as('ivan', ['investigator']) });
    expect(consistency.statusCode).toBe(200);
    const body = consistency.json<{ from: number; to: number; proof: string[]; from_root: string; to_root: string }>();
    expect(body.to).toBe(proof.tree_size);
    expect(b64(body.from_root).equals(memory.root(first.to))).toBe(true);
    expect(verifyConsistency(body.from, body.to, b64(body.from_root), b64(body.to_root), body.proof.map(b64))).toBe(true);
  });

  it('refuse sizes the tree has not reached, entries outside the size, and callers without the audit permission (inclusion)', async () => {
    await atLeastEntries(5);
    const head = (await auditRows(harness.testDb)).length;
    const tooLarge = await app.inject({ url: `/audit/proofs/inclusion?seq=1&tree_size=${head + 1000}`, headers: await auditor() });
    expect(tooLarge.statusCode).toBe(409);
    expect(tooLarge.json().error).toEqual({ code: 'tree_size_too_large', message: expect.stringMatching(/^the tree has \d+ entries so far, not \d+$/) });
    const outside = await app.inject({ url: '/audit/proofs/inclusion?seq=5&tree_size=4', headers: await auditor() });
    expect(outside.statusCode).toBe(400);
    expect(outside.json().error.message).toBe('entry 5 is not in the tree of size 4 (rows 1..4)');
    expect((await app.inject({ url: '/audit/proofs/inclusion?seq=1', headers: await as('ivan', ['investigator']) })).statusCode).toBe(403);
    expect((await app.inject({ url: '/audit/proofs/consistency?from=5&to=4', headers: await auditor() })).statusCode).toBe(400);
    expect((await app.inject({ url: '/audit/proofs/inclusion?seq=0', headers: await auditor() })).statusCode).toBe(400);
    expect((await app.inject({ url: '/audit/proofs/consistency?from=1' })).statusCode).toBe(401);
  });
});

describe('POST /persons/access lists the audit entries about the person\'s tokens', () => {
  it('each with an inclusion proof to the newest signed checkpoint, or marked not yet covered; none about other people', async () => {
    await reveal('ivan', [annaIp.token]);
    await reveal('ivan', [benIp.token]);
    // Her device through four eyes, so the trail holds a request, its approval and its collection.
    await revealApproved('ivan', [annaDevice.token]);
    await app.auditCheckpointer!.checkpointNow();
    const late = (await reveal('kim', [annaIp.token])).json<{ audit_seq: number }>().audit_seq;

    const response = await app.inject({ method: 'POST', url: '/persons/access', headers: await as('pia', ['privacy-officer']), payload: { user_id: ANNA, ...DSR } });
    expect(response.statusCode).toBe(200);
    const document = response.json<{
      audit_seq: number;
      audit_trail: { checkpoint: { index: number; tree_size: number }; truncated: boolean; entries: (Receipt['entry'] & { seq: number; occurred_at: string; outcome: string; inclusion: Inclusion | null; note?: string })[] };
    }>();
    const trail = document.audit_trail;
    // Every row that named one of Anna's tokens (her ip, her device), newest first, and nothing else.
    const { rows: expected } = await harness.testDb.owner.pool.query<{ seq: string }>('SELECT seq FROM audit_log WHERE tokens && $1::text[] AND seq < $2 ORDER BY seq DESC', [
      [annaIp.token, annaDevice.token],
      document.audit_seq,
    ]);
    expect(trail.entries.map((entry) => entry.seq)).toEqual(expected.map((row) => Number(row.seq)));
    expect(trail.truncated).toBe(false);
    expect(new Set(trail.entries.map((entry) => entry.action))).toEqual(new Set(['reveal', 'reveal.request', 'approval.approve', 'reveal.collect']));
    const memory = await memoryTree();
    const root = memory.root(trail.checkpoint.tree_size);
    for (const entry of trail.entries) {
      if (entry.seq > trail.checkpoint.tree_size) {
        expect(entry.inclusion).toBeNull();
        expect(entry.note).toMatch(/^not yet covered by a signed checkpoint: the newest \(index \d+\) covers entries 1\.\.\d+/);
      } else {
        expect(verifyInclusion(entry.seq - 1, entry.inclusion!.tree_size, b64(entry.inclusion!.leaf_hash), entry.inclusion!.proof.map(b64), root), `entry ${entry.seq}`).toBe(true);
      }
    }
    expect(trail.entries[0]).toMatchObject({ seq: late, action: 'reveal', actor: 'kim', outcome: 'allowed', inclusion: null });
    expect(response.headers['x-audit-seq']).toBe(String(document.audit_seq));
  });
});
