import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect } from 'vitest';
import { CHECKPOINT_FORMAT, checkpointBytes, checkpointDigest, type CheckpointBody } from '../../lib/audit/checkpoint.js';
import { ROW_COLUMNS, toRow, type RawRow } from '../../lib/audit/reader.js';
import { LocalAuditSigner } from '../../lib/keys/local-audit-signer.js';
import { LocalKeyring } from '../../lib/keys/local-keyring.js';
import { buildRevealApp, type RevealApp } from '../../services/reveal-api/app.js';
import { loadRevealConfig } from '../../services/reveal-api/config.js';
import { freshRevealTestFor } from '../support/reveal-fixture.js';
import { auditExportTo, auditVerify } from '../support/audit-cli.js';
import { bearer, PURPOSE, type RevealHarness, type SeededValue, harnessSettings } from '../support/reveal-harness.js';
import { tamperAuditLog } from '../support/tamper-audit-log.js';
import { settlePublication } from '../support/note-checkpoints.js';

/**
 * The README's export-and-verify lines as a new user runs them (issue 17 finding 1): in the first
 * minute, before any checkpoint; then export now and verify after several more checkpoints were
 * published. Also a log migrated from the v1 JSON checkpoints.
 */
const it = freshRevealTestFor();

// The test's own harness and a checkpointing app on its database, bound for the helpers below.
let harness: RevealHarness;
let ip: SeededValue;
let dir: string;
let app: RevealApp;

it.beforeEach(async ({ harness: fresh, sample }) => {
  harness = fresh;
  ip = sample.ip;
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-flow-'));
  const config = loadRevealConfig({
    ...harnessSettings(harness, join(dir, 'unused.key')),
    RATE_LIMIT_MAX: '10000',
    AUDIT_SIGNING_KEY_FILE: join(dir, 'audit', 'signing-key.pem'),
    AUDIT_ED25519_KEY_FILE: join(dir, 'audit', 'ed25519-key.pem'),
    AUDIT_CHECKPOINT_FILE: join(dir, 'audit', 'checkpoints.jsonl'),
    AUDIT_CHECKPOINT_INTERVAL_SECONDS: '0',
    AUDIT_CHECKPOINT_LOG: 'false',
  });
  app = await buildRevealApp({ config, database: harness.database, keys: LocalKeyring.fromKey(Buffer.from(harness.keyringMaster)), logger: pino({ level: 'silent' }) });
});
afterEach(async () => {
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

async function reveal(count: number) {
  const headers = bearer(await harness.token('alice', ['investigator']));
  for (let index = 0; index < count; index += 1) await app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: [ip.token], purpose: PURPOSE } });
}

async function exportTo(file: string) {
  expect(await auditExportTo(harness.testDb.url, file)).toBe(0);
}

/** `npm run audit:verify -- --export F --checkpoints .data/audit/checkpoints.jsonl --public-key .data/audit/signing-key.pem.pub.pem` */
function readmeVerify(exportFile: string) {
  return auditVerify({}, ['--export', exportFile, '--checkpoints', join(dir, 'audit', 'checkpoints.jsonl'), '--public-key', join(dir, 'audit', 'signing-key.pem.pub.pem')]);
}

const settle = () => settlePublication(app);

describe('the README export-and-verify flow', () => {
  it('in the first minute (no checkpoint published yet) says "no signed checkpoint yet" in plain words, exit 0', async () => {
    await reveal(3);
    const exportFile = join(dir, 'early.ndjson');
    await exportTo(exportFile);
    const result = await readmeVerify(exportFile);
    expect(result.code).toBe(0);
    expect(result.text).toMatch(/^audit log intact: 3 rows checked .*; 0 checkpoints; no signed checkpoint yet \(the first is signed within one checkpoint interval of the first audit row\)/);
    expect(result.text).toMatch(/checkpoints\.jsonl, which does not exist yet: no signed checkpoint yet/);
    expect(result.text).not.toMatch(/ENOENT/);
  });

  it('export now, verify after several more checkpoints: intact, and says how far the export is consistent with the newer ones', async () => {
    await reveal(4);
    expect((await app.auditCheckpointer!.checkpointNow()).status).toBe('written');
    await reveal(3);
    const exportFile = join(dir, 'export.ndjson');
    await exportTo(exportFile);
    for (const count of [2, 2, 2]) {
      await reveal(count);
      expect((await app.auditCheckpointer!.checkpointNow()).status).toBe('written');
    }
    await settle();
    const result = await readmeVerify(exportFile);
    expect(result.code).toBe(0);
    const lines = result.text.split('\n');
    expect(lines[0]).toMatch(/^audit log intact: 7 rows checked .*; 4 checkpoints; checkpoint 1 \(signed note\) signed \S+ covers rows 1\.\.4 .*; rows 5\.\.7 are after the last checkpoint/);
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(/^ {2}export ends at seq 7, older than checkpoint 2 \(\d+ rows, signed \S+\): not an alarm; rows 1\.\.4 are consistent with it \(published consistency proofs\); rows 5\.\.7 cannot be checked against it without a consistency proof from size 7/),
      expect.stringMatching(/^ {2}export ends at seq 7, older than checkpoint 3 /),
      expect.stringMatching(/^ {2}export ends at seq 7, older than checkpoint 4 /),
    ]);
    // A fresh export of the same log now checks everything.
    const fresh = join(dir, 'fresh.ndjson');
    await exportTo(fresh);
    expect((await readmeVerify(fresh)).text).toMatch(/^audit log intact: \d+ rows checked .*; 4 checkpoints; checkpoint 4 \(signed note\)[^\n]*$/);
  });

  it('checks one entry with its receipt (GET /audit/entries/{seq}) against the published checkpoints: intact, not yet covered, or altered', async () => {
    const headers = bearer(await harness.token('alice', ['investigator']));
    const revealed = await app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: [ip.token], purpose: PURPOSE } });
    const seq = (revealed.json() as { audit_seq: number }).audit_seq;
    expect(seq).toBeGreaterThan(0);
    const receiptFile = join(dir, 'receipt.json');
    const verifyEntry = async () => {
      await writeFile(receiptFile, (await app.inject({ url: `/audit/entries/${seq}`, headers })).body);
      return auditVerify({}, ['--entry', receiptFile, '--checkpoints', join(dir, 'audit', 'checkpoints.jsonl'), '--public-key', join(dir, 'audit', 'signing-key.pem.pub.pem')]);
    };
    expect(await verifyEntry()).toEqual({ code: 2, text: expect.stringMatching(new RegExp(`^entry ${seq} is not covered by a signed checkpoint yet .*fetch its receipt again after the next checkpoint`)) });
    expect((await app.auditCheckpointer!.checkpointNow()).status).toBe('written');
    await settle();
    expect(await verifyEntry()).toEqual({ code: 0, text: expect.stringMatching(new RegExp(`^audit entry ${seq} intact: reveal by alice at \\S+, outcome allowed; included in checkpoint 1 \\(\\d+ entries\\), proof of \\d+ hashes`)) });
    // The owner edits the entry (and its chain hash): the service still serves a receipt, which no longer checks out.
    await tamperAuditLog(harness.testDb.owner.pool, `UPDATE audit_log SET purpose = 'routine' WHERE seq = ${seq}`);
    const edited = await verifyEntry();
    expect(edited.code).toBe(1);
    expect(edited.text).toMatch(/^audit entry receipt BROKEN: the entry's content does not match its hash \(edited\)\n {2}also BROKEN: its inclusion proof does not lead to the root checkpoint 1 signed/);
  });

  it('a log migrated from v1 JSON checkpoints: the old ones keep verifying, the first note covers every row and continues the indexes', async () => {
    await reveal(3);
    // What the checkpointer before issue 17 stored and published: JSON checkpoints over the chain head.
    const signer = await LocalAuditSigner.open(join(dir, 'audit', 'signing-key.pem'));
    let previous: CheckpointBody | undefined;
    for (const index of [1, 2]) {
      if (index === 2) await reveal(2);
      const { rows } = await harness.testDb.owner.pool.query<RawRow>(`SELECT ${ROW_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT 1`);
      const head = toRow(rows[0]!);
      const body: CheckpointBody = {
        format: CHECKPOINT_FORMAT,
        origin: 'tokenvault/audit',
        index,
        seq: head.seq,
        head_hash: head.hash.toString('hex'),
        row_count: head.seq,
        time: new Date().toISOString(),
        prev_digest: previous === undefined ? null : checkpointDigest(previous),
        key_id: signer.keyId,
        signer: `local-only:${join(dir, 'audit', 'signing-key.pem')}`,
      };
      const bytes = checkpointBytes(body);
      await harness.testDb.owner.pool.query('INSERT INTO audit_checkpoints (idx, seq, body, signature) VALUES ($1, $2, $3, $4)', [index, body.seq, bytes.toString('utf8'), await signer.sign(bytes)]);
      previous = body;
    }
    await reveal(2);
    const outcome = await app.auditCheckpointer!.checkpointNow();
    expect(outcome).toMatchObject({ status: 'written', record: { index: 3 }, size: 7 });
    expect((outcome as { record: { consistency?: unknown } }).record.consistency).toBeUndefined();
    await settle();
    // The file sink caught up with the two JSON checkpoints the database held, then the note.
    const publishedText = await readFile(join(dir, 'audit', 'checkpoints.jsonl'), 'utf8');
    expect(publishedText.split('\n').filter((line) => line.length > 0).map((line) => (JSON.parse(line) as { type: string }).type)).toEqual(['checkpoint', 'checkpoint', 'note_checkpoint']);
    const exportFile = join(dir, 'migrated.ndjson');
    await exportTo(exportFile);
    expect(await readmeVerify(exportFile)).toMatchObject({ code: 0, text: expect.stringMatching(/^audit log intact: 7 rows checked .*; 3 checkpoints; checkpoint 3 \(signed note\) signed \S+ covers rows 1\.\.7/) });
    const verify = await app.inject({ url: '/audit/verify', headers: bearer(await harness.token('audrey', ['auditor'])) });
    expect(verify.json(), verify.body).toMatchObject({ ok: true, checkpoints: 3, checkpoint: { index: 3, kind: 'note', seq: 7 } });
  });
});
