import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chainHash, type AuditContent, type AuditRow } from '../../../lib/audit/chain.js';
import { CHECKPOINT_FORMAT, checkpointBytes, checkpointDigest, keyIdOf, type CheckpointBody } from '../../../lib/audit/checkpoint.js';
import { jsonRecord, type CheckpointRecord, type NoteCheckpointRecord } from '../../../lib/audit/checkpoint-record.js';
import { auditLeafHash } from '../../../lib/audit/merkle/audit-leaf.js';
import { MemoryMerkleTree } from '../../../lib/audit/merkle/memory-tree.js';
import { signNote } from '../../../lib/audit/note/signer.js';
import { formatCheckpoint } from '../../../lib/audit/note/tlog-checkpoint.js';
import { parseVerifierKey } from '../../../lib/audit/note/vkey.js';
import { CheckpointedLogVerifier, describeVerdict, type VerifierOptions } from '../../../lib/audit/checkpointed-log-verifier.js';
import { ed25519Cosigner } from '../../../lib/keys/note-signers.js';
import { testLogKeys, type TestLogKeys } from '../../support/note-checkpoints.js';

const keys = testLogKeys('example.com/tokenvault/audit');
const witness = ed25519Cosigner('witness.example/w1', generateKeyPairSync('ed25519').privateKey, () => Date.UTC(2026, 0, 1));
const witnessVerifier = parseVerifierKey(witness.verifierKey);

function makeRows(count: number, edit: (row: AuditRow) => void = () => undefined): AuditRow[] {
  const rows: AuditRow[] = [];
  let prev: Buffer | null = null;
  for (let seq = 1; seq <= count; seq += 1) {
    const content: AuditContent = {
      seq,
      occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
      action: 'reveal',
      actor: 'alice',
      roles: ['investigator'],
      clientAddress: null,
      requestId: `r-${seq}`,
      purpose: 'case 1',
      ticket: null,
      tokens: [],
      fieldCounts: { ip: 1 },
      outcome: 'allowed',
      reason: null,
      prevHash: prev,
    };
    const row: AuditRow = { ...content, hash: chainHash(content) };
    edit(row);
    rows.push(row);
    prev = row.hash;
  }
  return rows;
}

function treeOf(rows: AuditRow[]): MemoryMerkleTree {
  const tree = new MemoryMerkleTree();
  for (const row of rows) tree.appendLeafHash(auditLeafHash(row));
  return tree;
}

async function note(log: TestLogKeys, tree: MemoryMerkleTree, index: number, size: number, options: { fromSize?: number; cosign?: boolean; time?: string } = {}): Promise<NoteCheckpointRecord> {
  const text = formatCheckpoint({ origin: log.origin, size, rootHash: tree.root(size), extensions: [] });
  let signed = await signNote(text, log.signers);
  if (options.cosign === true) signed = await signNote(text, [...log.signers, witness]);
  return {
    kind: 'note',
    index,
    time: options.time ?? new Date(Date.UTC(2026, 0, 1, 1, index)).toISOString(),
    note: signed,
    ...(options.fromSize === undefined ? {} : { consistency: { fromSize: options.fromSize, proof: tree.consistencyProof(options.fromSize, size) } }),
  };
}

async function jsonCheckpoint(log: TestLogKeys, rows: AuditRow[], index: number, seq: number, previous?: CheckpointBody): Promise<CheckpointRecord> {
  const body: CheckpointBody = {
    format: CHECKPOINT_FORMAT,
    origin: log.origin,
    index,
    seq,
    head_hash: rows[seq - 1]!.hash.toString('hex'),
    row_count: seq,
    time: new Date(Date.UTC(2026, 0, 1, 0, index)).toISOString(),
    prev_digest: previous === undefined ? null : checkpointDigest(previous),
    key_id: keyIdOf(log.publicKey),
    signer: 'local-only',
  };
  return jsonRecord({ body, signature: await log.audit.sign(checkpointBytes(body)) });
}

function verify(records: CheckpointRecord[], rows: AuditRow[], options: VerifierOptions = {}, exportRecords: CheckpointRecord[] = []) {
  const verifier = new CheckpointedLogVerifier({ publicKey: keys.publicKey, mode: 'export', ...options });
  for (const record of records) verifier.addCheckpoint(record);
  for (const record of exportRecords) verifier.addCheckpoint(record, { fromExport: true });
  for (const row of rows) verifier.pushRow(row);
  return verifier.verdict();
}

describe('audit log verifier', () => {
  it('verifies v1 JSON checkpoints followed by signed notes over the same rows (a migrated log)', async () => {
    const rows = makeRows(20);
    const tree = treeOf(rows);
    const first = await jsonCheckpoint(keys, rows, 1, 5);
    const second = await jsonCheckpoint(keys, rows, 2, 8, (first as Extract<CheckpointRecord, { kind: 'json' }>).checkpoint.body);
    const records = [first, second, await note(keys, tree, 3, 12), await note(keys, tree, 4, 17, { fromSize: 12 })];
    const verdict = verify(records, rows);
    expect(verdict).toMatchObject({ ok: true, checked: 20, checkpoints: 4, findings: [], checkpoint: { index: 4, kind: 'note', seq: 17, signatureOk: true }, uncovered: { fromSeq: 18, toSeq: 20 } });
    expect(verdict.root).toBe(tree.root().toString('hex'));
    expect(describeVerdict(verdict)).toMatch(/^audit log intact: 20 rows checked .*checkpoint 4 \(signed note\) signed \S+ covers rows 1\.\.17 \(signature verified.*; rows 18\.\.20 are after the last checkpoint/);
  });

  it('an export older than the newest checkpoints is intact, never an alarm; the published proofs say how far it is consistent with them', async () => {
    const all = makeRows(30);
    const tree = treeOf(all);
    const records = [await note(keys, tree, 1, 10), await note(keys, tree, 2, 20, { fromSize: 10 }), await note(keys, tree, 3, 30, { fromSize: 20 })];
    // Exported when the log had 15 rows; verified after two more checkpoints were published.
    const verdict = verify(records, all.slice(0, 15), { exportStartedAt: Date.UTC(2026, 0, 1, 1, 1, 30) });
    expect(verdict).toMatchObject({ ok: true, findings: [], checkpoint: { index: 1, seq: 10 }, newer: [{ index: 2, seq: 20, provenSeq: 10 }, { index: 3, seq: 30, provenSeq: 10 }] });
    const text = describeVerdict(verdict);
    expect(text).toMatch(/^audit log intact/);
    expect(text).toContain('export ends at seq 15, older than checkpoint 3 (30 rows, signed 2026-01-01T01:03:00.000Z): not an alarm; rows 1..10 are consistent with it (published consistency proofs); rows 11..15 cannot be checked against it without a consistency proof from size 15');
  });

  it('reports a truncated tail when the checkpoint provably existed when the export started (in the export, or signed well before it)', async () => {
    const all = makeRows(30);
    const tree = treeOf(all);
    const records = [await note(keys, tree, 1, 10), await note(keys, tree, 2, 20, { fromSize: 10 })];
    const rows = all.slice(0, 15);
    const inExport = verify(records, rows, {}, records);
    expect(inExport.ok).toBe(false);
    expect(inExport.findings).toEqual([{ checkpoint: 2, seq: 16, message: expect.stringMatching(/covers rows up to seq 20, but the export, which already holds this checkpoint, ends at seq 15 \(rows 16\.\.20 were deleted: truncated tail\)/) }]);
    // Signed at 01:02, export started an hour later, the export lacks rows it covers.
    const later = verify(records, rows, { exportStartedAt: Date.UTC(2026, 0, 1, 2, 2) });
    expect(later.findings).toEqual([{ checkpoint: 2, seq: 16, message: expect.stringMatching(/signed at 2026-01-01T01:02:00.000Z, before the export started/) }]);
    // The database itself (live mode) is never older than a checkpoint.
    expect(verify(records, rows, { mode: 'live' }).findings).toEqual([{ checkpoint: 2, seq: 16, message: expect.stringMatching(/but the log ends at seq 15/) }]);
  });

  it('reports every finding, not only the first: two edited rows, a missing checkpoint and a rewritten range', async () => {
    const good = makeRows(20);
    const tree = treeOf(good);
    const records = [await note(keys, tree, 1, 5), await note(keys, tree, 3, 10), await note(keys, tree, 4, 15, { fromSize: 10 })];
    const rows = good.map((row) => ({ ...row }));
    rows[2]!.actor = 'mallory';
    rows[12]!.purpose = 'nothing to see';
    const verdict = verify(records, rows);
    expect(verdict.ok).toBe(false);
    expect(verdict.findings.map((finding) => [finding.checkpoint, finding.seq, finding.message.split(' (')[0]])).toEqual([
      [2, undefined, 'checkpoint 2 is missing'],
      [undefined, 3, 'content does not match its hash'],
      [1, 5, expect.stringMatching(/^rows 1\.\.5 have the tree root/)],
      [3, 10, expect.stringMatching(/^rows 1\.\.10 have the tree root/)],
      [undefined, 13, 'content does not match its hash'],
      [4, 15, expect.stringMatching(/^rows 1\.\.15 have the tree root/)],
    ]);
    expect(verdict.checked).toBe(18);
    const lines = describeVerdict(verdict).split('\n');
    expect(lines[0]).toMatch(/^audit log BROKEN at checkpoint 2: checkpoint 2 is missing .*\(6 findings; 18 rows verified\)/);
    expect(lines.slice(1)).toHaveLength(5);
  });

  it('a chain recomputed after an edit is caught by the tree roots the notes signed', async () => {
    const good = makeRows(12);
    const records = [await note(keys, treeOf(good), 1, 6), await note(keys, treeOf(good), 2, 12, { fromSize: 6 })];
    // The owner edits row 4 and recomputes every hash after it: the chain alone verifies.
    const forged = makeRows(12, (row) => {
      if (row.seq === 4) {
        row.actor = 'nobody';
        row.hash = chainHash(row);
      }
    });
    const relinked: AuditRow[] = [];
    for (const row of forged) {
      const content = { ...row, prevHash: relinked.at(-1)?.hash ?? null };
      relinked.push({ ...content, hash: chainHash(content) });
    }
    const verdict = verify(records, relinked);
    expect(verdict.checked).toBe(12);
    expect(verdict.findings.map((finding) => finding.checkpoint)).toEqual([1, 2]);
    expect(verdict.findings[0]?.message).toMatch(/rows 1\.\.6 were rewritten/);
  });

  it('flags a forged, altered or foreign checkpoint, a rollback, a fork and a failing published consistency proof', async () => {
    const rows = makeRows(20);
    const tree = treeOf(rows);
    const stranger = testLogKeys(keys.origin);
    const altered = await note(keys, tree, 2, 10, { fromSize: 5 });
    altered.note = altered.note.replace(/\n\d+\n/, '\n11\n');
    const forkTree = treeOf(makeRows(20, (row) => (row.purpose = 'other')));
    const records = [
      await note(keys, tree, 1, 5),
      altered,
      await note(stranger, tree, 3, 12),
      await note(keys, tree, 4, 8),
      await note(keys, forkTree, 5, 8),
      { ...(await note(keys, tree, 6, 16, { fromSize: 8 })), consistency: { fromSize: 8, proof: forkTree.consistencyProof(8, 16) } },
      await note(keys, tree, 7, 12),
    ];
    const messages = verify(records, rows).findings.map((finding) => `${finding.checkpoint}: ${finding.message}`);
    expect(messages).toEqual([
      expect.stringMatching(/^2: .*does not verify \(checkpoint altered or forged\)/),
      expect.stringMatching(/^3: carries no signature of the log's key/),
      expect.stringMatching(/^5: signs a different root for the same 8 rows as checkpoint 4 \(a fork\)/),
      expect.stringMatching(/^6: does not extend checkpoint 5: the published consistency proof from 8 to 16 rows fails/),
      expect.stringMatching(/^7: covers 12 rows, fewer than checkpoint 6's 16 \(rolled back\)/),
      expect.stringMatching(/^5: rows 1\.\.8 have the tree root .*\(checkpoint 4 signs the tree these rows have: this one is another tree of them \(a fork\)/),
    ]);
  });

  it('with a witness quorum, flags a checkpoint no witness cosigned unless a later cosigned one extends it', async () => {
    const rows = makeRows(20);
    const tree = treeOf(rows);
    const records = [await note(keys, tree, 1, 5, { cosign: true }), await note(keys, tree, 2, 10, { fromSize: 5 }), await note(keys, tree, 3, 15, { fromSize: 10, cosign: true }), await note(keys, tree, 4, 20, { fromSize: 15 })];
    const withQuorum = verify(records, rows, { witnessKeys: [witnessVerifier], quorum: 1 });
    expect(withQuorum.findings).toEqual([{ checkpoint: 4, message: expect.stringMatching(/^has 0 of the 1 witness cosignatures required: no witness vouched for it/) }]);
    expect(withQuorum.notes).toEqual(['checkpoint 2 has 0 of 1 witness cosignatures, but checkpoint 3 (cosigned) extends it']);
    expect(verify(records.slice(0, 3), rows, { witnessKeys: [witnessVerifier], quorum: 1 })).toMatchObject({ ok: true, checkpoint: { index: 3, cosignedBy: ['witness.example/w1'] } });
    // Without a quorum the cosignatures are reported, not required.
    expect(verify(records, rows, { witnessKeys: [witnessVerifier] })).toMatchObject({ ok: true, checkpoint: { index: 4, cosignedBy: [] } });
  });

  it('flags a database copy that differs from the published record, and says "no signed checkpoint yet" when there is none', async () => {
    const rows = makeRows(6);
    const tree = treeOf(rows);
    const published = await note(keys, tree, 1, 4);
    const replaced = await note(keys, treeOf(makeRows(6, (row) => (row.actor = 'x'))), 1, 4);
    expect(verify([published], rows, {}, [replaced]).findings[0]).toEqual({ checkpoint: 1, message: "the database's copy of checkpoint 1 differs from the published one (one of them was altered or replaced)" });
    expect(describeVerdict(verify([], rows))).toMatch(/0 checkpoints; no signed checkpoint yet \(the first is signed within one checkpoint interval of the first audit row\)/);
  });

  it('reports missing and reordered rows and keeps checking the rest', () => {
    const rows = makeRows(10);
    const gap = [...rows.slice(0, 3), ...rows.slice(5)];
    expect(verify([], gap).findings).toEqual([{ seq: 4, message: 'rows 4..5 are missing (deleted): the next row is 6' }]);
    // Lines out of order in the file.
    const shuffled = [...rows];
    [shuffled[1], shuffled[3]] = [shuffled[3]!, shuffled[1]!];
    expect(verify([], shuffled).findings).toEqual([
      { seq: 2, message: 'rows 2..3 are missing (deleted): the next row is 4' },
      { seq: 3, message: 'row 3 is out of order (expected 5)' },
      { seq: 2, message: 'row 2 is out of order (expected 5)' },
    ]);
    // Rows 2 and 4 swapped by changing their seq in the table (seq is hashed): every broken link is named.
    const swapped = rows.map((row) => ({ ...row }));
    [swapped[1], swapped[3]] = [{ ...rows[3]!, seq: 2 }, { ...rows[1]!, seq: 4 }];
    expect(verify([], swapped).findings.map((finding) => finding.seq)).toEqual([2, 3, 4, 5]);
  });
});
