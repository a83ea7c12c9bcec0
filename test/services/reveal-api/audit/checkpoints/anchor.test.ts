import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import pino from 'pino';
import { afterEach, describe, expect } from 'vitest';
import { chainHash, type AuditContent } from '../../../../../lib/audit/chain.js';
import { noteCheckpointLine, type NoteCheckpointRecord } from '../../../../../lib/audit/checkpoint-record.js';
import { auditLeafHash } from '../../../../../lib/audit/merkle/audit-leaf.js';
import { CompactRange } from '../../../../../lib/audit/merkle/compact-range.js';
import { signNote } from '../../../../../lib/audit/note/signer.js';
import { formatCheckpoint, openCheckpoint } from '../../../../../lib/audit/note/tlog-checkpoint.js';
import { parseVerifierKey, type NoteVerifier } from '../../../../../lib/audit/note/vkey.js';
import { ROW_COLUMNS, toRow, type RawRow } from '../../../../../lib/audit/reader.js';
import { treeHead } from '../../../../../lib/audit/tree-store.js';
import { fetchWitnessedCheckpoint, submitCheckpoint, WitnessError, type WitnessEndpoint } from '../../../../../lib/audit/witness-client.js';
import { loadOrCreateEd25519Key } from '../../../../../lib/keys/ed25519-key-file.js';
import { LocalAuditSigner } from '../../../../../lib/keys/local-audit-signer.js';
import { LocalKeyring } from '../../../../../lib/keys/local-keyring.js';
import { ecdsaNoteSigner, ed25519Cosigner, ed25519NoteSigner } from '../../../../../lib/keys/note-signers.js';
import { buildRevealApp, type RevealApp } from '../../../../../services/reveal-api/app.js';
import { loadRevealConfig } from '../../../../../services/reveal-api/config.js';
import { buildWitnessApp } from '../../../../../services/witness/app.js';
import { WitnessStateStore } from '../../../../../services/witness/state-store.js';
import { freshRevealTestFor } from '../../../../support/reveal-fixture.js';
import { auditExportTo, auditVerify } from '../../../../support/audit-cli.js';
import { bearer, PURPOSE, type RevealHarness, type SeededValue, harnessSettings } from '../../../../support/reveal-harness.js';
import { tamperAuditLog } from '../../../../support/tamper-audit-log.js';
import { publishedNoteRecords, settlePublication } from '../../../../support/note-checkpoints.js';

const ORIGIN = 'test.example/audit';
const WITNESS_NAME = 'test.example/witness';

const it = freshRevealTestFor();

// The test's own harness, bound for the helpers below.
let harness: RevealHarness;
let ip: SeededValue;
let dir: string;
let logKeys: { ecdsa: string; ed25519: string };
let witnessKey: KeyObject;
let witnessVkey: string;
let witness: { app: FastifyInstance; store: WitnessStateStore; url: string; port: number } | undefined;
const apps: RevealApp[] = [];

it.beforeEach(async ({ harness: fresh, sample }) => {
  harness = fresh;
  ip = sample.ip;
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-anchor-'));
  const audit = await LocalAuditSigner.open(join(dir, 'signing-key.pem'));
  logKeys = {
    ecdsa: ecdsaNoteSigner(ORIGIN, audit).verifierKey,
    ed25519: ed25519NoteSigner(ORIGIN, await loadOrCreateEd25519Key(join(dir, 'ed25519-key.pem'), 'test')).verifierKey,
  };
  witnessKey = generateKeyPairSync('ed25519').privateKey;
  witnessVkey = ed25519Cosigner(WITNESS_NAME, witnessKey).verifierKey;
  await writeFile(join(dir, 'witness.vkey'), `${witnessVkey}\n`);
  await startWitness(0);
});
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close().catch(() => undefined);
  await stopWitness();
  await rm(dir, { recursive: true, force: true });
});

/** The witness (C2SP tlog-witness) over real HTTP, with its own state directory; restartable on the same port. */
async function startWitness(port: number): Promise<void> {
  const store = await WitnessStateStore.open(join(dir, 'witness'));
  const verifiers = [parseVerifierKey(logKeys.ecdsa), parseVerifierKey(logKeys.ed25519)];
  const app = await buildWitnessApp({
    config: { logs: new Map([[ORIGIN, verifiers]]), bodyLimitBytes: 65_536, logLevel: 'silent' },
    store,
    cosigner: ed25519Cosigner(WITNESS_NAME, witnessKey),
    logger: pino({ level: 'silent' }),
  });
  const address = await app.listen({ host: '127.0.0.1', port });
  witness = { app, store, url: address, port: Number(new URL(address).port) };
}

async function stopWitness(): Promise<void> {
  await witness?.app.close();
  await witness?.store.close();
}

const witnessEndpoint = (): WitnessEndpoint => ({ url: witness!.url, verifier: parseVerifierKey(witnessVkey) });
const logVerifiers = (): NoteVerifier[] => [parseVerifierKey(logKeys.ecdsa), parseVerifierKey(logKeys.ed25519)];

async function checkpointingApp(env: Record<string, string> = {}) {
  const config = loadRevealConfig({
    ...harnessSettings(harness, join(dir, 'unused.key')),
    RATE_LIMIT_MAX: '10000',
    AUDIT_LOG_ORIGIN: ORIGIN,
    AUDIT_SIGNING_KEY_FILE: join(dir, 'signing-key.pem'),
    AUDIT_ED25519_KEY_FILE: join(dir, 'ed25519-key.pem'),
    AUDIT_CHECKPOINT_FILE: join(dir, 'checkpoints.jsonl'),
    AUDIT_CHECKPOINT_INTERVAL_SECONDS: '0',
    AUDIT_CHECKPOINT_LOG: 'false',
    AUDIT_WITNESS_URLS: witness!.url,
    AUDIT_WITNESS_KEYS: witnessVkey,
    AUDIT_WITNESS_TIMEOUT_SECONDS: '5',
    ...env,
  });
  const app = await buildRevealApp({ config, database: harness.database, keys: LocalKeyring.fromKey(Buffer.from(harness.keyringMaster)), logger: pino({ level: 'silent' }) });
  apps.push(app);
  return app;
}

async function reveal(app: RevealApp, count = 1) {
  const headers = bearer(await harness.token('alice', ['investigator']));
  for (let index = 0; index < count; index += 1) {
    expect((await app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: [ip.token], purpose: PURPOSE } })).statusCode).toBe(200);
  }
}

const published = (file = join(dir, 'checkpoints.jsonl')) => publishedNoteRecords(file);

const settle = settlePublication;

/** The owner's rewrite of finding 2: triggers off, row 3 edited, every chain hash and every tree node recomputed, audit_checkpoints deleted. */
async function rewriteLogAsOwner(): Promise<void> {
  await tamperAuditLog(harness.testDb.owner.pool, async (client) => {
    await client.query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3");
    await recomputeChain(client);
    await client.query('DELETE FROM audit_tree_nodes');
    const { rows } = await client.query<RawRow>(`SELECT ${ROW_COLUMNS} FROM audit_log ORDER BY seq`);
    const range = CompactRange.empty();
    const nodes = rows.flatMap((raw) => range.append(auditLeafHash(toRow(raw))));
    await client.query('INSERT INTO audit_tree_nodes (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])', [
      nodes.map((node) => node.level),
      nodes.map((node) => node.index),
      nodes.map((node) => node.hash),
    ]);
    await client.query('DELETE FROM audit_checkpoints');
  });
}

async function recomputeChain(client: pg.PoolClient) {
  const { rows } = await client.query<RawRow>(`SELECT ${ROW_COLUMNS} FROM audit_log ORDER BY seq`);
  let prev: Buffer | null = null;
  for (const raw of rows) {
    const content: AuditContent = { ...toRow(raw), prevHash: prev };
    const hash = chainHash(content);
    await client.query('UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3', [prev, hash, raw.seq]);
    prev = hash;
  }
}

async function storedCount(): Promise<number> {
  const { rows } = await harness.testDb.owner.pool.query<{ n: string }>('SELECT count(*) AS n FROM audit_checkpoints');
  return Number(rows[0]?.n);
}

const verifyCli = (args: string[]) => auditVerify({}, args);

describe('checkpoints anchored outside the database', () => {
  it('every checkpoint is cosigned by the witness; one signed while it was down is published without, and the next catches it up', async () => {
    const app = await checkpointingApp();
    await reveal(app, 2);
    const first = await app.auditCheckpointer!.checkpointNow();
    expect(first).toMatchObject({ status: 'written', cosignatures: [{ witness: WITNESS_NAME, oldSize: 0 }] });
    const opened = openCheckpoint((first as { record: NoteCheckpointRecord }).record.note, [...logVerifiers(), witnessEndpoint().verifier]);
    expect(opened.verified.map((signature) => signature.name)).toEqual([ORIGIN, ORIGIN, WITNESS_NAME]);
    expect((await fetchWitnessedCheckpoint(witnessEndpoint(), ORIGIN, logVerifiers()))?.checkpoint.size).toBe(opened.checkpoint.size);

    const port = witness!.port;
    await stopWitness();
    await reveal(app, 2);
    const second = await app.auditCheckpointer!.checkpointNow();
    expect(second).toMatchObject({ status: 'written', cosignatures: [] });
    expect((await app.inject({ url: '/readyz' })).json()).toMatchObject({ checks: { auditCheckpoints: { ok: true, detail: expect.stringMatching(new RegExp(`not cosigned by ${WITNESS_NAME}`)) } } });
    expect((await app.revealMetrics.auditCosignatures.get()).values).toContainEqual(expect.objectContaining({ labels: { witness: WITNESS_NAME, result: 'unavailable' }, value: 1 }));

    await startWitness(port);
    await reveal(app, 1);
    const third = await app.auditCheckpointer!.checkpointNow();
    // The witness last cosigned the first checkpoint: the submission proves consistency from its size.
    expect(third).toMatchObject({ status: 'written', cosignatures: [{ witness: WITNESS_NAME, oldSize: opened.checkpoint.size }] });
    await settle(app);
    const lines = await published();
    expect(lines.map((record) => record.index)).toEqual([1, 2, 3]);
    expect(lines.map((record) => record.note.includes(`\u2014 ${WITNESS_NAME} `))).toEqual([true, false, true]);

    // The offline verifier with a quorum of 1: checkpoint 2 lacks the cosignature but checkpoint 3 extends it.
    const exportFile = join(dir, 'export.ndjson');
    expect(await auditExportTo(harness.testDb.url, exportFile)).toBe(0);
    const result = await verifyCli(['--export', exportFile, '--checkpoints', join(dir, 'checkpoints.jsonl'), '--public-key', join(dir, 'signing-key.pem.pub.pem'), '--witness-key', join(dir, 'witness.vkey'), '--witness-quorum', '1']);
    expect(result).toMatchObject({ code: 0, text: expect.stringMatching(/^audit log intact: .*checkpoint 3 \(signed note\).*cosigned by test\.example\/witness/) });
    expect(result.text).toContain('note: checkpoint 2 has 0 of 1 witness cosignatures, but checkpoint 3 (cosigned) extends it');
  });

  it('finding 2: after the owner rewrites a row, recomputes every chain hash and tree node and deletes audit_checkpoints, nothing is signed; the witness refuses the fork; the verifier with a quorum flags it', async () => {
    const app = await checkpointingApp();
    for (const count of [3, 3, 2]) {
      await reveal(app, count);
      expect((await app.auditCheckpointer!.checkpointNow()).status).toBe('written');
    }
    await reveal(app, 2);
    await settle(app);
    const genuine = await published();
    expect(genuine.map((record) => record.index)).toEqual([1, 2, 3]);
    const witnessed = await fetchWitnessedCheckpoint(witnessEndpoint(), ORIGIN, logVerifiers());

    await rewriteLogAsOwner();
    expect(await storedCount()).toBe(0);
    // The forged log verifies on its own: chain and tree are consistent, nothing stored contradicts them.
    const forgedHead = await treeHead(harness.testDb.owner.pool);

    // The running replica (it remembers checkpoint 3), …
    const refused = await app.auditCheckpointer!.checkpointNow();
    expect(refused).toMatchObject({ status: 'refused', failure: 'inconsistent', reason: expect.stringMatching(/does not extend checkpoint 3/) });
    expect((await app.revealMetrics.auditCheckpointFailures.get()).values).toContainEqual(expect.objectContaining({ labels: { reason: 'inconsistent' }, value: 1 }));
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(503);
    // … a restarted one (nothing in memory: it reads back the file sink and asks the witness), …
    const restarted = await checkpointingApp();
    expect(await restarted.auditCheckpointer!.checkpointNow()).toMatchObject({ status: 'refused', failure: 'inconsistent' });
    // … and one whose published file the owner removed too (the witness alone remembers).
    await rename(join(dir, 'checkpoints.jsonl'), join(dir, 'checkpoints.moved'));
    const blind = await checkpointingApp();
    expect(await blind.auditCheckpointer!.checkpointNow()).toMatchObject({ status: 'refused', failure: 'inconsistent', reason: expect.stringMatching(/witness test\.example\/witness/) });
    await rename(join(dir, 'checkpoints.moved'), join(dir, 'checkpoints.jsonl'));
    expect(await storedCount()).toBe(0);
    expect((await published()).map((record) => record.index)).toEqual([1, 2, 3]);

    // Suppose the owner gets the forged tree signed anyway (the log's key, no anchor): the witness refuses the fork.
    const signers = [ecdsaNoteSigner(ORIGIN, await LocalAuditSigner.open(join(dir, 'signing-key.pem'))), ed25519NoteSigner(ORIGIN, await loadOrCreateEd25519Key(join(dir, 'ed25519-key.pem'), 'test'))];
    const forgedNote = await signNote(formatCheckpoint({ origin: ORIGIN, size: forgedHead.size, rootHash: forgedHead.root, extensions: [] }), signers);
    const noProof = async () => [] as Buffer[];
    const refusal = await submitCheckpoint(witnessEndpoint(), forgedNote, witnessed!.checkpoint.size, noProof).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(WitnessError);
    expect(refusal).toMatchObject({ code: 'witness_inconsistent', status: 422 });
    // From size 0 (a "new" log) it answers 409 with the size it remembers, and the client's retry is refused as above.
    const response = await fetch(`${witness!.url}/add-checkpoint`, { method: 'POST', body: `old 0\n\n${forgedNote}` });
    expect(response.status).toBe(409);
    expect(await response.text()).toBe(`${witnessed!.checkpoint.size}\n`);
    expect((await fetchWitnessedCheckpoint(witnessEndpoint(), ORIGIN, logVerifiers()))?.checkpoint.rootHash).toEqual(witnessed!.checkpoint.rootHash);

    // The offline verifier: the forged export against the published checkpoints, and, with a quorum,
    // even against a checkpoints file holding only the forged (uncosigned) checkpoint.
    const exportFile = join(dir, 'forged-export.ndjson');
    expect(await auditExportTo(harness.testDb.url, exportFile)).toBe(0);
    const common = ['--export', exportFile, '--public-key', join(dir, 'signing-key.pem.pub.pem'), '--witness-key', join(dir, 'witness.vkey'), '--witness-quorum', '1'];
    const against = await verifyCli([...common, '--checkpoints', join(dir, 'checkpoints.jsonl')]);
    expect(against.code).toBe(1);
    expect(against.text).toMatch(/^audit log BROKEN at checkpoint 1 \(seq \d+\): rows 1\.\.\d+ have the tree root .* \(rows 1\.\.\d+ were rewritten, deleted or inserted\)/);
    expect(against.text.match(/BROKEN at checkpoint \d/g)).toEqual(['BROKEN at checkpoint 1', 'BROKEN at checkpoint 2', 'BROKEN at checkpoint 3']);
    const onlyForged = join(dir, 'only-forged.jsonl');
    await writeFile(onlyForged, `${noteCheckpointLine({ index: 1, time: new Date().toISOString(), note: forgedNote })}\n`);
    const quorum = await verifyCli([...common, '--checkpoints', onlyForged]);
    expect(quorum).toMatchObject({ code: 1, text: expect.stringMatching(/^audit log BROKEN at checkpoint 1: has 0 of the 1 witness cosignatures required: no witness vouched for it/) });
    // Without the quorum that file alone would pass: the witness is what the owner cannot rewrite.
    expect((await verifyCli(['--export', exportFile, '--public-key', join(dir, 'signing-key.pem.pub.pem'), '--checkpoints', onlyForged])).code).toBe(0);
  });

  it('deleting audit_checkpoints alone never yields a new index 1: the next checkpoint follows the published ones and extends their tree', async () => {
    const app = await checkpointingApp();
    for (const count of [2, 2]) {
      await reveal(app, count);
      expect((await app.auditCheckpointer!.checkpointNow()).status).toBe('written');
    }
    await settle(app);
    await tamperAuditLog(harness.testDb.owner.pool, 'DELETE FROM audit_checkpoints');
    await reveal(app, 1);
    const restarted = await checkpointingApp();
    const outcome = await restarted.auditCheckpointer!.checkpointNow();
    expect(outcome).toMatchObject({ status: 'written', record: { index: 3, consistency: { fromSize: expect.any(Number) } } });
    await settle(restarted);
    expect((await published()).map((record) => record.index)).toEqual([1, 2, 3]);
    const { rows } = await harness.testDb.owner.pool.query<{ idx: string }>('SELECT idx FROM audit_checkpoints');
    expect(rows.map((row) => Number(row.idx))).toEqual([3]);
  });
});
