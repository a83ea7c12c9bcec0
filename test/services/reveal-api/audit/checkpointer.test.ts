import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { checkpointDigest, parseCheckpoint, publicKeyFromPem, verifyCheckpointSignature, type SignedCheckpoint } from '../../../../lib/audit/checkpoint.js';
import { KmsAuditSigner } from '../../../../lib/keys/kms-audit-signer.js';
import { LocalKeyring } from '../../../../lib/keys/local-keyring.js';
import { buildRevealApp, type RevealApp } from '../../../../services/reveal-api/app.js';
import { LOCAL_AUDIENCE, LOCAL_ISSUER } from '../../../../lib/auth/local-signing-key.js';
import { loadRevealConfig } from '../../../../services/reveal-api/config.js';
import type { CheckpointSink } from '../../../../services/reveal-api/audit/sinks.js';
import { startFakeKms, type FakeKms } from '../../../support/kms-server.js';
import { bearer, PURPOSE, SAMPLE_VALUES, startRevealHarness, type RevealHarness, type SeededValue } from '../support.js';

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
// Checkpoint indexes and the published file are per log: each test starts a fresh one.
beforeEach(async () => {
  harness = await startRevealHarness();
  [ip] = (await harness.seed(SAMPLE_VALUES)) as [SeededValue];
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-checkpoints-'));
});
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close().catch(() => undefined);
  await harness?.close();
  await rm(dir, { recursive: true, force: true });
});

async function checkpointingApp(env: Record<string, string> = {}, extra: Parameters<typeof buildRevealApp>[0] extends infer D ? Partial<D> : never = {}) {
  const config = loadRevealConfig({
    DATABASE_URL: harness.testDb.url,
    LOCAL_MASTER_KEY_FILE: join(dir, 'unused.key'),
    JWT_PUBLIC_KEY: harness.signingKey.publicKeyPem,
    JWT_ISSUER: LOCAL_ISSUER,
    JWT_AUDIENCE: LOCAL_AUDIENCE,
    RATE_LIMIT_MAX: '10000',
    AUDIT_SIGNING_KEY_FILE: join(dir, 'signing-key.pem'),
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

async function fileCheckpoints(file = join(dir, 'checkpoints.jsonl')): Promise<SignedCheckpoint[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => parseCheckpoint(JSON.parse(line)));
}

async function head(): Promise<{ seq: number; hash: string }> {
  const { rows } = await harness.testDb.owner.pool.query<{ seq: string; hash: Buffer }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
  return { seq: Number(rows[0]?.seq), hash: rows[0]?.hash.toString('hex') ?? '' };
}

async function settle(app: RevealApp) {
  // The publisher runs after the commit; give the file sink its turn.
  for (let attempt = 0; attempt < 50 && (await app.revealMetrics.auditSinkPending.get()).values.some((value) => value.value > 0); attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('audit checkpointer', () => {
  it('signs the chain head, stores it, publishes it to the file, and chains the next one to it', async () => {
    const app = await checkpointingApp();
    await reveal(app, 3);
    const first = await app.auditCheckpointer!.checkpointNow();
    expect(first.status).toBe('written');
    expect(await app.auditCheckpointer!.checkpointNow()).toEqual({ status: 'unchanged' });
    await reveal(app, 2);
    const second = await app.auditCheckpointer!.checkpointNow();
    await settle(app);
    expect(second.status).toBe('written');
    const published = await fileCheckpoints();
    expect(published.map((item) => item.body.index)).toEqual([1, 2]);
    const publicKey = publicKeyFromPem(await readFile(join(dir, 'signing-key.pem.pub.pem'), 'utf8'));
    expect(published.every((item) => verifyCheckpointSignature(item, publicKey))).toBe(true);
    expect(published[1]?.body.prev_digest).toBe(checkpointDigest(published[0]!.body));
    expect(published[1]?.body).toMatchObject({ seq: (await head()).seq, head_hash: (await head()).hash, row_count: (await head()).seq, signer: expect.stringMatching(/^local-only:/) });
    const stored = await harness.testDb.owner.pool.query<{ idx: string; body: string }>('SELECT idx, body FROM audit_checkpoints ORDER BY idx');
    expect(stored.rows.map((stored_) => JSON.parse(stored_.body) as unknown)).toEqual(published.map((item) => item.body));
    expect((await app.inject({ url: '/audit/public-key' })).body).toBe(await readFile(join(dir, 'signing-key.pem.pub.pem'), 'utf8'));
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

  it('refuses to sign when a row after the last checkpoint was rewritten by the owner, and counts it', async () => {
    const app = await checkpointingApp();
    await reveal(app, 1);
    await app.auditCheckpointer!.checkpointNow();
    await reveal(app, 2);
    const { seq } = await head();
    await asOwner(`UPDATE audit_log SET actor = 'nobody' WHERE seq = ${seq}`);
    try {
      const outcome = await app.auditCheckpointer!.checkpointNow();
      expect(outcome).toMatchObject({ status: 'refused', reason: expect.stringMatching(new RegExp(`seq ${seq}: content does not match`)) });
      expect((await app.revealMetrics.auditCheckpointFailures.get()).values).toContainEqual(expect.objectContaining({ labels: { reason: 'chain' }, value: 1 }));
    } finally {
      await asOwner(`UPDATE audit_log SET actor = 'alice' WHERE seq = ${seq}`);
    }
  });

  it('writes a last checkpoint on graceful shutdown', async () => {
    const app = await checkpointingApp();
    await reveal(app, 2);
    await app.close();
    const published = await fileCheckpoints();
    expect(published.at(-1)?.body.seq).toBe((await head()).seq);
  });

  it('retries a failing sink, counts the failures, and never blocks reveals', async () => {
    let failuresLeft = 2;
    const delivered: number[] = [];
    const flaky: CheckpointSink = {
      name: 'flaky',
      async publish(checkpoint) {
        if (failuresLeft > 0) {
          failuresLeft -= 1;
          throw new Error('sink down');
        }
        delivered.push(checkpoint.body.index);
      },
    };
    const hanging: CheckpointSink = { name: 'hanging', publish: () => new Promise(() => undefined) };
    const app = await checkpointingApp({}, { auditSinks: [flaky, hanging] });
    (app.auditCheckpointer as unknown as { publisher: { options: { retryBaseMs: number } } }).publisher.options.retryBaseMs = 10;
    await reveal(app, 1);
    const outcome = await app.auditCheckpointer!.checkpointNow();
    expect(outcome.status).toBe('written');
    // Reveals go on while one sink hangs and another fails.
    await reveal(app, 2);
    for (let attempt = 0; attempt < 100 && delivered.length === 0; attempt += 1) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(delivered).toEqual([outcome.status === 'written' ? outcome.checkpoint.body.index : -1]);
    expect((await app.revealMetrics.auditSinkFailures.get()).values).toContainEqual(expect.objectContaining({ labels: { sink: 'flaky' }, value: 2 }));
  });

  it('signs with an AWS KMS ECC_NIST_P256 key over HTTP (the real SDK client)', async () => {
    const arn = kms.createSigningKey();
    const signer = await KmsAuditSigner.open({ keyId: arn, region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials });
    const file = join(dir, 'kms-checkpoints.jsonl');
    const app = await checkpointingApp({ AUDIT_CHECKPOINT_FILE: file }, { auditSigner: signer });
    await reveal(app, 1);
    const outcome = await app.auditCheckpointer!.checkpointNow();
    await settle(app);
    expect(outcome.status).toBe('written');
    const [published] = (await fileCheckpoints(file)).slice(-1);
    expect(published?.body.signer).toBe(`aws-kms:${arn}`);
    expect(verifyCheckpointSignature(published!, signer.publicKey)).toBe(true);
    expect(kms.calls.Sign).toBeGreaterThanOrEqual(1);
    signer.close();
  });

  it('refuses UPDATE and DELETE on audit_checkpoints, even for the owner', async () => {
    const app = await checkpointingApp();
    await reveal(app, 1);
    expect((await app.auditCheckpointer!.checkpointNow()).status).toBe('written');
    await expect(harness.testDb.owner.pool.query("UPDATE audit_checkpoints SET body = '{}'")).rejects.toThrow(/append-only/);
    await expect(harness.testDb.owner.pool.query('DELETE FROM audit_checkpoints')).rejects.toThrow(/append-only/);
    await expect(harness.testDb.as('auditor').pool.query('SELECT count(*) FROM audit_checkpoints')).resolves.toBeDefined();
  });
});

async function count(): Promise<number> {
  const { rows } = await harness.testDb.owner.pool.query<{ n: string }>('SELECT count(*) AS n FROM audit_checkpoints');
  return Number(rows[0]?.n);
}

async function asOwner(sql: string) {
  await harness.testDb.owner.pool.query(`BEGIN; ALTER TABLE audit_log DISABLE TRIGGER USER; ${sql}; ALTER TABLE audit_log ENABLE TRIGGER USER; COMMIT`);
}
