import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect } from 'vitest';
import { verifyConsistency } from '../../../../../lib/audit/merkle/verify.js';
import { EMPTY_ROOT } from '../../../../../lib/audit/merkle/hash.js';
import { signNote } from '../../../../../lib/audit/note/signer.js';
import { formatCheckpoint, openCheckpoint } from '../../../../../lib/audit/note/tlog-checkpoint.js';
import { createNoteSigners } from '../../../../../services/reveal-api/audit/checkpoints/note-signers.js';
import { parseVerifierKey, SignatureType } from '../../../../../lib/audit/note/vkey.js';
import { treeHead } from '../../../../../lib/audit/tree-store.js';
import { KmsAuditSigner } from '../../../../../lib/keys/kms-audit-signer.js';
import { LocalKeyring } from '../../../../../lib/keys/local-keyring.js';
import { ecdsaNoteSigner } from '../../../../../lib/keys/note-signers.js';
import { buildRevealApp, type RevealApp } from '../../../../../services/reveal-api/app.js';
import { loadRevealConfig } from '../../../../../services/reveal-api/config.js';
import type { CheckpointSink } from '../../../../../services/reveal-api/audit/checkpoints/sinks.js';
import { startFakeKms, type FakeKms } from '../../../../support/kms-server.js';
import { freshRevealTestFor } from '../../../../support/reveal-fixture.js';
import { bearer, PURPOSE, type RevealHarness, type SeededValue, harnessSettings } from '../../../../support/reveal-harness.js';
import { tamperAuditLog } from '../../../../support/tamper-audit-log.js';
import { publishedNoteRecords, settlePublication } from '../../../../support/note-checkpoints.js';

// Checkpoint indexes and the published file are per log: each test starts a fresh one.
const it = freshRevealTestFor();

// The test's own harness, bound for the helpers below.
let harness: RevealHarness;
let ip: SeededValue;
let dir: string;
let kms: FakeKms;
const apps: RevealApp[] = [];

beforeAll(async () => {
  kms = await startFakeKms();
});
afterAll(async () => {
  await kms?.close();
});
it.beforeEach(async ({ harness: fresh, sample }) => {
  harness = fresh;
  ip = sample.ip;
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-checkpoints-'));
});
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

async function checkpointingApp(env: Record<string, string> = {}, extra: Partial<Parameters<typeof buildRevealApp>[0]> = {}) {
  const config = loadRevealConfig({
    ...harnessSettings(harness, join(dir, 'unused.key')),
    RATE_LIMIT_MAX: '10000',
    AUDIT_LOG_ORIGIN: 'test.example/audit',
    AUDIT_SIGNING_KEY_FILE: join(dir, 'signing-key.pem'),
    AUDIT_ED25519_KEY_FILE: join(dir, 'ed25519-key.pem'),
    AUDIT_CHECKPOINT_FILE: join(dir, 'checkpoints.jsonl'),
    AUDIT_CHECKPOINT_INTERVAL_SECONDS: '0',
    AUDIT_CHECKPOINT_LOG: 'false',
    ...env,
  });
  const app = await buildRevealApp({
    config,
    database: harness.database,
    keys: LocalKeyring.fromKey(Buffer.from(harness.keyringMaster)),
    logger: pino({ level: 'silent' }),
    ...extra,
  });
  apps.push(app);
  return app;
}

async function reveal(app: RevealApp, count = 1) {
  const headers = bearer(await harness.token('alice', ['investigator']));
  for (let index = 0; index < count; index += 1) {
    const response = await app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: [ip.token], purpose: PURPOSE } });
    expect(response.statusCode).toBe(200);
  }
}

const fileRecords = (file = join(dir, 'checkpoints.jsonl')) => publishedNoteRecords(file);

const settle = settlePublication;

async function logVerifiers() {
  const audit = await import('../../../../../lib/keys/local-audit-signer.js').then((module) => module.LocalAuditSigner.open(join(dir, 'signing-key.pem')));
  const { loadOrCreateEd25519Key } = await import('../../../../../lib/keys/ed25519-key-file.js');
  const { ed25519NoteSigner } = await import('../../../../../lib/keys/note-signers.js');
  return [
    parseVerifierKey(ecdsaNoteSigner('test.example/audit', audit).verifierKey),
    parseVerifierKey(ed25519NoteSigner('test.example/audit', await loadOrCreateEd25519Key(join(dir, 'ed25519-key.pem'), 'test')).verifierKey),
  ];
}

describe('audit checkpointer', () => {
  it('signs the stored tree as a C2SP note (ECDSA P-256 and Ed25519), stores it, publishes it with the consistency proof from the previous one', async () => {
    const app = await checkpointingApp();
    await reveal(app, 3);
    const first = await app.auditCheckpointer!.checkpointNow();
    expect(first.status).toBe('written');
    expect(await app.auditCheckpointer!.checkpointNow()).toEqual({ status: 'unchanged' });
    await reveal(app, 2);
    const second = await app.auditCheckpointer!.checkpointNow();
    await settle(app);
    expect(second.status).toBe('written');
    const published = await fileRecords();
    expect(published.map((record) => record.index)).toEqual([1, 2]);
    const verifiers = await logVerifiers();
    const opened = published.map((record) => openCheckpoint(record.note, verifiers));
    expect(opened.map((item) => item.verified.map((signature) => signature.verifier.type))).toEqual([
      [SignatureType.Ecdsa, SignatureType.Ed25519],
      [SignatureType.Ecdsa, SignatureType.Ed25519],
    ]);
    const head = await treeHead(harness.testDb.owner.pool);
    expect(opened[1]?.checkpoint).toMatchObject({ origin: 'test.example/audit', size: head.size, rootHash: head.root });
    const link = published[1]!.consistency!;
    expect(link.fromSize).toBe(opened[0]!.checkpoint.size);
    expect(verifyConsistency(link.fromSize, head.size, opened[0]!.checkpoint.rootHash, head.root, link.proof)).toBe(true);
    const stored = await harness.testDb.owner.pool.query<{ idx: string; note: string; tree_size: string; root_hash: Buffer; body: string | null }>(
      'SELECT idx, note, tree_size, root_hash, body FROM audit_checkpoints ORDER BY idx',
    );
    expect(stored.rows.map((row) => row.note)).toEqual(published.map((record) => record.note));
    expect(stored.rows.map((row) => [Number(row.tree_size), row.body])).toEqual([
      [opened[0]!.checkpoint.size, null],
      [head.size, null],
    ]);
    expect((await app.inject({ url: '/audit/public-key' })).body).toBe(await readFile(join(dir, 'signing-key.pem.pub.pem'), 'utf8'));
  });

  it('never publishes the private key\'s file path (finding 5): key names and key IDs only', async () => {
    const app = await checkpointingApp();
    await reveal(app, 1);
    expect((await app.auditCheckpointer!.checkpointNow()).status).toBe('written');
    await app.close();
    const text = await readFile(join(dir, 'checkpoints.jsonl'), 'utf8');
    const stored = await harness.testDb.owner.pool.query<{ text: string }>("SELECT concat_ws(' ', body, note) AS text FROM audit_checkpoints");
    for (const published of [text, ...stored.rows.map((row) => row.text)]) {
      expect(published).not.toContain(dir);
      expect(published).not.toContain('signing-key.pem');
      expect(published).not.toContain('ed25519-key.pem');
    }
  });

  it('elects one writer: replicas checkpointing at the same moment write one checkpoint', async () => {
    const [a, b, c] = [await checkpointingApp(), await checkpointingApp(), await checkpointingApp()];
    await reveal(a, 2);
    const before = await count();
    const outcomes = await Promise.all([a, b, c].map((app) => app.auditCheckpointer!.checkpointNow()));
    expect(outcomes.filter((outcome) => outcome.status === 'written')).toHaveLength(1);
    expect(outcomes.every((outcome) => ['written', 'not-leader', 'unchanged'].includes(outcome.status))).toBe(true);
    expect(await count()).toBe(before + 1);
  });

  it('refuses to sign when a row after the last checkpoint was rewritten by the owner, counts it and reports it on /readyz', async () => {
    const app = await checkpointingApp();
    await reveal(app, 1);
    expect((await app.auditCheckpointer!.checkpointNow()).status).toBe('written');
    await reveal(app, 2);
    const { rows } = await harness.testDb.owner.pool.query<{ seq: string }>('SELECT max(seq) AS seq FROM audit_log');
    const seq = Number(rows[0]?.seq);
    await tamperAuditLog(harness.testDb.owner.pool, `UPDATE audit_log SET actor = 'nobody' WHERE seq = ${seq}`);
    try {
      const outcome = await app.auditCheckpointer!.checkpointNow();
      expect(outcome).toMatchObject({ status: 'refused', failure: 'chain', reason: expect.stringMatching(new RegExp(`seq ${seq}: content does not match`)) });
      expect((await app.revealMetrics.auditCheckpointFailures.get()).values).toContainEqual(expect.objectContaining({ labels: { reason: 'chain' }, value: 1 }));
      const ready = await app.inject({ url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ checks: { auditCheckpoints: { ok: false, error: 'checkpoint_refused (chain)' } } });
    } finally {
      await tamperAuditLog(harness.testDb.owner.pool, `UPDATE audit_log SET actor = 'alice' WHERE seq = ${seq}`);
    }
    expect((await app.auditCheckpointer!.checkpointNow()).status).toBe('written');
    expect((await app.inject({ url: '/readyz' })).json()).toMatchObject({ checks: { auditCheckpoints: { ok: true, detail: expect.stringMatching(/^checkpoint 2 \(\d+ rows\)/) } } });
  });

  it('writes a last checkpoint on graceful shutdown', async () => {
    const app = await checkpointingApp();
    await reveal(app, 2);
    await app.close();
    const published = await fileRecords();
    expect(openCheckpoint(published.at(-1)!.note, await logVerifiers()).checkpoint.size).toBe((await treeHead(harness.testDb.owner.pool)).size);
  });

  it('retries a failing sink, counts the failures, and never blocks reveals', async () => {
    let failuresLeft = 2;
    const delivered: number[] = [];
    const flaky: CheckpointSink = {
      name: 'flaky',
      async publish(record) {
        if (failuresLeft > 0) {
          failuresLeft -= 1;
          throw new Error('sink down');
        }
        delivered.push(record.index);
      },
    };
    const hanging: CheckpointSink = { name: 'hanging', publish: () => new Promise(() => undefined) };
    const app = await checkpointingApp({}, { auditSinks: [flaky, hanging] });
    (app.auditCheckpointer as unknown as { deps: { publisher: { options: { retryBaseMs: number } } } }).deps.publisher.options.retryBaseMs = 10;
    await reveal(app, 1);
    const outcome = await app.auditCheckpointer!.checkpointNow();
    expect(outcome.status).toBe('written');
    // Reveals go on while one sink hangs and another fails.
    await reveal(app, 2);
    for (let attempt = 0; attempt < 100 && delivered.length === 0; attempt += 1) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(delivered).toEqual([outcome.status === 'written' ? outcome.record.index : -1]);
    expect((await app.revealMetrics.auditSinkFailures.get()).values).toContainEqual(expect.objectContaining({ labels: { sink: 'flaky' }, value: 2 }));
  });

  it('signs with AWS KMS over HTTP (the real SDK client): the P-256 audit key as the note\'s ECDSA signature', async () => {
    const arn = kms.createSigningKey();
    const signer = await KmsAuditSigner.open({ keyId: arn, region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials });
    const file = join(dir, 'kms-checkpoints.jsonl');
    const app = await checkpointingApp({ AUDIT_CHECKPOINT_FILE: file }, { auditSigner: signer });
    await reveal(app, 1);
    const outcome = await app.auditCheckpointer!.checkpointNow();
    await settle(app);
    expect(outcome.status).toBe('written');
    const [published] = (await fileRecords(file)).slice(-1);
    expect(openCheckpoint(published!.note, [parseVerifierKey(ecdsaNoteSigner('test.example/audit', signer).verifierKey)]).verified).toHaveLength(1);
    expect(kms.calls.Sign).toBeGreaterThanOrEqual(1);
    signer.close();
  });

  it('adds an Ed25519 signature from an AWS KMS ECC_NIST_EDWARDS25519 key (AUDIT_ED25519_KEY_ID)', async () => {
    const edArn = kms.createSigningKey(undefined, 'ECC_NIST_EDWARDS25519');
    const audit = await import('../../../../../lib/keys/local-audit-signer.js').then((module) => module.LocalAuditSigner.open(join(dir, 'signing-key.pem')));
    const config = loadRevealConfig({
      DATABASE_URL: harness.testDb.url,
      LOCAL_MASTER_KEY_FILE: join(dir, 'unused.key'),
      JWT_SECRET: 'x'.repeat(40),
      JWT_ISSUER: 'i',
      JWT_AUDIENCE: 'a',
      AUDIT_LOG_ORIGIN: 'test.example/audit',
      AUDIT_SIGNING_KEY_FILE: join(dir, 'signing-key.pem'),
      AUDIT_ED25519_KEY_ID: edArn,
    }).auditCheckpoints!;
    const signers = await createNoteSigners({ ...config, ed25519: { kind: 'aws-kms', keyId: edArn, region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials } }, audit);
    try {
      const note = await signNote(formatCheckpoint({ origin: 'test.example/audit', size: 0, rootHash: EMPTY_ROOT, extensions: [] }), signers.signers);
      const verified = openCheckpoint(note, signers.signers.map((signer) => parseVerifierKey(signer.verifierKey))).verified;
      expect(verified.map((signature) => signature.verifier.type)).toEqual([SignatureType.Ecdsa, SignatureType.Ed25519]);
    } finally {
      signers.close();
    }
  });

  it('refuses UPDATE and DELETE on audit_checkpoints, even for the owner', async () => {
    const app = await checkpointingApp();
    await reveal(app, 1);
    expect((await app.auditCheckpointer!.checkpointNow()).status).toBe('written');
    await expect(harness.testDb.owner.pool.query("UPDATE audit_checkpoints SET note = 'x'")).rejects.toThrow(/append-only/);
    await expect(harness.testDb.owner.pool.query('DELETE FROM audit_checkpoints')).rejects.toThrow(/append-only/);
    await expect(harness.testDb.as('auditor').pool.query('SELECT count(*) FROM audit_checkpoints')).resolves.toBeDefined();
  });
});

async function count(): Promise<number> {
  const { rows } = await harness.testDb.owner.pool.query<{ n: string }>('SELECT count(*) AS n FROM audit_checkpoints');
  return Number(rows[0]?.n);
}
