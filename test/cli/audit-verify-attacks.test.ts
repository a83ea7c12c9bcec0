import { generateKeyPairSync } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAuditExport } from '../../cli/audit-export.js';
import { runAuditVerify } from '../../cli/audit-verify.js';
import { checkpointBytes, checkpointDigest, keyIdOf, parseCheckpoint, type SignedCheckpoint } from '../../lib/audit/checkpoint.js';
import { checkpointLine } from '../../lib/audit/export-format.js';
import { LocalAuditSigner } from '../../lib/keys/local-audit-signer.js';
import { LocalKeyring } from '../../lib/keys/local-keyring.js';
import { buildRevealApp, type RevealApp } from '../../services/reveal-api/app.js';
import { LOCAL_AUDIENCE, LOCAL_ISSUER } from '../../lib/auth/local-signing-key.js';
import { chainHash, type AuditContent } from '../../lib/audit/chain.js';
import { ROW_COLUMNS, toRow, type RawRow } from '../../lib/audit/reader.js';
import { loadRevealConfig } from '../../services/reveal-api/config.js';
import { bearer, PURPOSE, SAMPLE_VALUES, startRevealHarness, type RevealHarness, type SeededValue } from '../services/reveal-api/support.js';

/**
 * The insider attacks of the audit issue, scripted as the database owner (who can switch the
 * append-only triggers off and recompute every hash with the project's own chainHash), each
 * followed by an export and the offline verifier with only the published checkpoints and the
 * public key. 15 rows: checkpoint 1 covers 1..5, checkpoint 2 covers 1..10, checkpoint 3
 * covers 1..13; rows 14..15 are not yet covered.
 */
let harness: RevealHarness;
let app: RevealApp;
let ip: SeededValue;
let dir: string;
let publishedFile: string;
let publicKeyFile: string;

beforeAll(async () => {
  harness = await startRevealHarness();
  [ip] = (await harness.seed(SAMPLE_VALUES)) as [SeededValue];
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-attacks-'));
  publishedFile = join(dir, 'published.jsonl');
  publicKeyFile = join(dir, 'signing-key.pem.pub.pem');
  const config = loadRevealConfig({
    DATABASE_URL: harness.testDb.url,
    LOCAL_MASTER_KEY_FILE: join(dir, 'unused.key'),
    JWT_PUBLIC_KEY: harness.signingKey.publicKeyPem,
    JWT_ISSUER: LOCAL_ISSUER,
    JWT_AUDIENCE: LOCAL_AUDIENCE,
    RATE_LIMIT_MAX: '10000',
    AUDIT_SIGNING_KEY_FILE: join(dir, 'signing-key.pem'),
    AUDIT_CHECKPOINT_FILE: publishedFile,
    AUDIT_CHECKPOINT_INTERVAL_SECONDS: '0',
    AUDIT_CHECKPOINT_LOG: 'false',
  });
  app = await buildRevealApp({ config, database: harness.database, keys: LocalKeyring.fromKey(Buffer.from(harness.keyringMaster)), logger: pino({ level: 'silent' }) });
  const headers = bearer(await harness.token('alice', ['investigator']));
  const reveal = async (count: number) => {
    for (let index = 0; index < count; index += 1) {
      await app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: [ip.token], purpose: PURPOSE } });
    }
  };
  for (const count of [5, 5, 3]) {
    await reveal(count);
    expect((await app.auditCheckpointer!.checkpointNow()).status).toBe('written');
  }
  await reveal(2);
  // Wait for the file sink.
  for (let attempt = 0; attempt < 100 && (await published()).length < 3; attempt += 1) await new Promise((resolve) => setTimeout(resolve, 20));
  await harness.testDb.owner.pool.query('CREATE TABLE audit_snapshot AS TABLE audit_log');
}, 120_000);
afterAll(async () => {
  await harness?.close();
  await rm(dir, { recursive: true, force: true });
});

async function published(): Promise<SignedCheckpoint[]> {
  const text = await readFile(publishedFile, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => parseCheckpoint(JSON.parse(line)));
}

/** Export as the auditor, then verify offline: exit code and the one line printed. */
async function exportAndVerify(checkpointsFile = publishedFile, keyFile = publicKeyFile) {
  const exportFile = join(dir, 'export.ndjson');
  const lines: string[] = [];
  const output = { out: (line: string) => lines.push(line), err: (line: string) => lines.push(line) };
  expect(await runAuditExport(['--out', exportFile], { DATABASE_URL: harness.testDb.url }, { out: () => undefined, err: () => undefined })).toBe(0);
  const code = await runAuditVerify({}, output, ['--export', exportFile, '--checkpoints', checkpointsFile, '--public-key', keyFile]);
  return { code, line: lines.join('\n') };
}

/** One transaction as the owner: triggers off, the change, triggers on. Restored afterwards. */
async function asOwner(change: (client: pg.PoolClient) => Promise<void>, run: () => Promise<void>) {
  const client = await harness.testDb.owner.pool.connect();
  try {
    await client.query('BEGIN; ALTER TABLE audit_log DISABLE TRIGGER USER');
    await change(client);
    await client.query('ALTER TABLE audit_log ENABLE TRIGGER USER; COMMIT');
    await run();
  } finally {
    await client.query(
      'BEGIN; ALTER TABLE audit_log DISABLE TRIGGER USER; DELETE FROM audit_log; INSERT INTO audit_log SELECT * FROM audit_snapshot; ALTER TABLE audit_log ENABLE TRIGGER USER; COMMIT',
    );
    client.release();
  }
}

/** Re-links every row after a change, exactly as an owner with the project's code would. */
async function recomputeChain(client: pg.PoolClient) {
  const { rows } = await client.query<RawRow>(`SELECT ${ROW_COLUMNS} FROM audit_log ORDER BY seq`);
  let prev: Buffer | null = null;
  let seq = 0;
  for (const raw of rows) {
    seq += 1;
    const content: AuditContent = { ...toRow(raw), seq, prevHash: prev };
    const hash = chainHash(content);
    await client.query('UPDATE audit_log SET seq = $1, prev_hash = $2, hash = $3 WHERE seq = $4', [-seq, prev, hash, raw.seq]);
    prev = hash;
  }
  await client.query('UPDATE audit_log SET seq = -seq WHERE seq < 0');
}

async function writeCheckpoints(file: string, checkpoints: SignedCheckpoint[]) {
  await writeFile(file, checkpoints.map((checkpoint) => `${checkpointLine(checkpoint)}\n`).join(''));
}

describe('offline verifier against the database owner', () => {
  it('untouched: exit 0, names the newest checkpoint and the uncovered rows', async () => {
    const result = await exportAndVerify();
    expect(result.code).toBe(0);
    expect(result.line).toMatch(
      /^audit log intact: 15 rows checked \(head seq 15 hash [0-9a-f]{64}\); 3 checkpoints; checkpoint 3 signed \S+ covers rows 1\.\.13 \(signature verified, key [0-9a-f]{16}…\); rows 14\.\.15 are after the last checkpoint and not yet covered by a signature/,
    );
  });

  it('edited row: exit 1 at that seq', async () => {
    await asOwner(
      (client) => client.query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3").then(() => undefined),
      async () => expect(await exportAndVerify()).toEqual({ code: 1, line: expect.stringMatching(/^audit log BROKEN at seq 3: content does not match its hash \(row edited\)/) }),
    );
  });

  it('deleted row: exit 1 at that seq', async () => {
    await asOwner(
      (client) => client.query('DELETE FROM audit_log WHERE seq = 7').then(() => undefined),
      async () => expect(await exportAndVerify()).toEqual({ code: 1, line: expect.stringMatching(/^audit log BROKEN at seq 7: row 7 is missing \(deleted\)/) }),
    );
  });

  it('reordered rows: exit 1 at the first moved seq', async () => {
    await asOwner(
      (client) =>
        client.query('UPDATE audit_log SET seq = -2 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 4; UPDATE audit_log SET seq = 4 WHERE seq = -2').then(() => undefined),
      async () => expect(await exportAndVerify()).toEqual({ code: 1, line: expect.stringMatching(/^audit log BROKEN at seq 2: /) }),
    );
  });

  it('truncated tail (rows a checkpoint covers deleted): exit 1 naming the checkpoint', async () => {
    await asOwner(
      (client) => client.query('DELETE FROM audit_log WHERE seq >= 9').then(() => undefined),
      async () =>
        expect(await exportAndVerify()).toEqual({
          code: 1,
          line: expect.stringMatching(/^audit log BROKEN at checkpoint 2 \(seq 9\): it covers rows up to seq 10, but the log ends at seq 8 \(rows 9\.\.10 were deleted: truncated tail\)/),
        }),
    );
  });

  it('wholesale recomputed chain (row 3 edited, newest row deleted, every hash recomputed): exit 1 naming the checkpoint', async () => {
    await asOwner(
      async (client) => {
        await client.query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3");
        await client.query('DELETE FROM audit_log WHERE seq = 15');
        await recomputeChain(client);
      },
      async () =>
        expect(await exportAndVerify()).toEqual({
          code: 1,
          line: expect.stringMatching(/^audit log BROKEN at checkpoint 1 \(seq 5\): row 5 has hash [0-9a-f]{16}… but the signed head is [0-9a-f]{16}… \(rows 1\.\.5 were rewritten/),
        }),
    );
  });

  it('altered checkpoint (its head replaced to match a rewritten chain): exit 1 naming it', async () => {
    const checkpoints = await published();
    checkpoints[1] = { ...checkpoints[1]!, body: { ...checkpoints[1]!.body, head_hash: 'f'.repeat(64) } };
    const file = join(dir, 'altered.jsonl');
    await writeCheckpoints(file, checkpoints);
    expect(await exportAndVerify(file)).toEqual({ code: 1, line: expect.stringMatching(/^audit log BROKEN at checkpoint 2: signature does not verify \(checkpoint altered or forged\)/) });
  });

  it('forged checkpoint (appended with our key id, no valid signature): exit 1 naming it', async () => {
    const checkpoints = await published();
    const last = checkpoints.at(-1)!;
    const forged = { ...last.body, index: 4, seq: 15, row_count: 15, prev_digest: checkpointDigest(last.body), head_hash: 'a'.repeat(64) };
    const file = join(dir, 'forged.jsonl');
    await writeCheckpoints(file, [...checkpoints, { body: forged, signature: last.signature }]);
    expect(await exportAndVerify(file)).toEqual({ code: 1, line: expect.stringMatching(/^audit log BROKEN at checkpoint 4: signature does not verify/) });
  });

  it('checkpoints re-signed with another key after recomputing the chain: exit 1 naming the first', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const attacker = LocalAuditSigner.fromKey(privateKey);
    const resigned: SignedCheckpoint[] = [];
    for (const checkpoint of await published()) {
      const body = { ...checkpoint.body, key_id: keyIdOf(publicKey), prev_digest: resigned.length === 0 ? null : checkpointDigest(resigned.at(-1)!.body) };
      resigned.push({ body, signature: await attacker.sign(checkpointBytes(body)) });
    }
    const file = join(dir, 'other-key.jsonl');
    await writeCheckpoints(file, resigned);
    expect(await exportAndVerify(file)).toEqual({ code: 1, line: expect.stringMatching(/^audit log BROKEN at checkpoint 1: signed by another key/) });
    // …and presenting the attacker's public key instead is caught too: it is not the published one.
    const attackerKeyFile = join(dir, 'attacker.pub.pem');
    await writeFile(attackerKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    expect((await exportAndVerify(publishedFile, attackerKeyFile)).line).toMatch(/^audit log BROKEN at checkpoint 1: signed by another key/);
  });

  it('deleted checkpoint: exit 1 naming the missing one', async () => {
    const checkpoints = await published();
    const file = join(dir, 'deleted.jsonl');
    await writeCheckpoints(file, [checkpoints[0]!, checkpoints[2]!]);
    expect(await exportAndVerify(file)).toEqual({ code: 1, line: expect.stringMatching(/^audit log BROKEN at checkpoint 2: checkpoint 2 is missing \(deleted\): the next one is checkpoint 3/) });
  });

  it('the database copy of the checkpoints wiped with the tail: the published file still exposes it', async () => {
    await asOwner(
      async (client) => {
        await client.query('DELETE FROM audit_log WHERE seq >= 12');
        await client.query('ALTER TABLE audit_checkpoints DISABLE TRIGGER USER; DELETE FROM audit_checkpoints WHERE idx = 3; ALTER TABLE audit_checkpoints ENABLE TRIGGER USER');
      },
      async () => {
        expect((await exportAndVerify()).line).toMatch(/^audit log BROKEN at checkpoint 3 \(seq 12\): it covers rows up to seq 13/);
        await copyFile(publishedFile, join(dir, 'kept.jsonl'));
      },
    );
    await harness.testDb.owner.pool.query('INSERT INTO audit_checkpoints (idx, seq, body, signature) VALUES ($1, $2, $3, $4)', await restoreCheckpoint(3));
  });

  it('exits 2 with usage when the public key is missing or a file is unreadable', async () => {
    const lines: string[] = [];
    const output = { out: (line: string) => lines.push(line), err: (line: string) => lines.push(line) };
    expect(await runAuditVerify({}, output, ['--export', join(dir, 'export.ndjson')])).toBe(2);
    expect(lines.join('\n')).toMatch(/--public-key is required/);
    expect(await runAuditVerify({}, output, ['--export', join(dir, 'nope.ndjson'), '--public-key', publicKeyFile])).toBe(2);
  });
});

async function restoreCheckpoint(index: number): Promise<unknown[]> {
  const checkpoint = (await published()).find((item) => item.body.index === index)!;
  return [index, checkpoint.body.seq, checkpointBytes(checkpoint.body).toString('utf8'), checkpoint.signature];
}
