import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import pino from 'pino';
import { afterAll, describe, expect } from 'vitest';
import { runAuditVerify } from '../../cli/audit-verify.js';
import { noteCheckpointLine, type NoteCheckpointRecord } from '../../lib/audit/checkpoint-record.js';
import { signNote } from '../../lib/audit/note/signer.js';
import { parseSignedNote } from '../../lib/audit/note/signed-note.js';
import { LocalAuditSigner } from '../../lib/keys/local-audit-signer.js';
import { LocalKeyring } from '../../lib/keys/local-keyring.js';
import { ecdsaNoteSigner } from '../../lib/keys/note-signers.js';
import { buildRevealApp, type RevealApp } from '../../services/reveal-api/app.js';
import { chainHash, type AuditContent } from '../../lib/audit/chain.js';
import { ROW_COLUMNS, toRow, type RawRow } from '../../lib/audit/reader.js';
import { loadRevealConfig } from '../../services/reveal-api/config.js';
import { revealTestFor } from '../support/reveal-fixture.js';
import { auditExportTo, auditVerify } from '../support/audit-cli.js';
import { bearer, PURPOSE, type RevealHarness, type SeededValue, harnessSettings } from '../support/reveal-harness.js';
import { tamperAuditLog } from '../support/tamper-audit-log.js';
import { publishedNoteRecords } from '../support/note-checkpoints.js';

/**
 * The insider attacks of the audit issues, scripted as the database owner (who can switch the
 * append-only triggers off and recompute every hash with the project's own code), each followed
 * by an export and the offline verifier with only the published checkpoints and the public key.
 * 15 rows: checkpoint 1 covers 1..5, checkpoint 2 covers 1..10, checkpoint 3 covers 1..13
 * (signed notes over the Merkle tree); rows 14..15 are not yet covered.
 */
const it = revealTestFor({}, { timeout: 120_000 });

// The file's shared harness, bound once for the helpers below.
let harness: RevealHarness;
let app: RevealApp;
let ip: SeededValue;
let dir: string;
let publishedFile: string;
let publicKeyFile: string;

// Three signed checkpoints over 13 rows, two rows after them, and a snapshot of the log to restore after each attack.
it.beforeAll(async ({ harness: shared, sample }) => {
  harness = shared;
  ip = sample.ip;
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-attacks-'));
  publishedFile = join(dir, 'published.jsonl');
  publicKeyFile = join(dir, 'signing-key.pem.pub.pem');
  const config = loadRevealConfig({
    ...harnessSettings(harness, join(dir, 'unused.key')),
    RATE_LIMIT_MAX: '10000',
    AUDIT_SIGNING_KEY_FILE: join(dir, 'signing-key.pem'),
    AUDIT_ED25519_KEY_FILE: join(dir, 'ed25519-key.pem'),
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
  await rm(dir, { recursive: true, force: true });
});

const published = () => publishedNoteRecords(publishedFile);

/** Export as the auditor, then verify offline: exit code and what was printed. */
async function exportAndVerify(checkpointsFile = publishedFile, keyFile = publicKeyFile, extra: string[] = []) {
  const exportFile = join(dir, 'export.ndjson');
  expect(await auditExportTo(harness.testDb.url, exportFile)).toBe(0);
  const { code, text } = await auditVerify({}, ['--export', exportFile, '--checkpoints', checkpointsFile, '--public-key', keyFile, ...extra]);
  return { code, line: text };
}

/** The database now (live): a checkpoint beyond its rows is a truncation, with no clock involved. */
async function verifyDatabase(checkpointsFile = publishedFile) {
  const { code, text } = await auditVerify({ DATABASE_URL: harness.testDb.url }, ['--checkpoints', checkpointsFile, '--public-key', publicKeyFile]);
  return { code, line: text };
}

/** `run` against the log as the owner's `change` left it; the log restored from its snapshot afterwards. */
async function withTamperedLog(change: (client: pg.PoolClient) => Promise<void>, run: () => Promise<void>) {
  const owner = harness.testDb.owner.pool;
  try {
    await tamperAuditLog(owner, change);
    await run();
  } finally {
    await tamperAuditLog(owner, 'DELETE FROM audit_log; INSERT INTO audit_log SELECT * FROM audit_snapshot');
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

async function writeRecords(file: string, records: NoteCheckpointRecord[]) {
  await writeFile(file, records.map((record) => `${noteCheckpointLine(record)}\n`).join(''));
}

describe('offline verifier against the database owner', () => {
  it('untouched: exit 0, names the newest checkpoint and the uncovered rows', async () => {
    const result = await exportAndVerify();
    expect(result.code).toBe(0);
    expect(result.line).toMatch(
      /^audit log intact: 15 rows checked \(head seq 15 hash [0-9a-f]{64}\); 3 checkpoints; checkpoint 3 \(signed note\) signed \S+ covers rows 1\.\.13 \(signature verified, key [0-9a-f]{16}…, no witness cosignature checked\); rows 14\.\.15 are after the last checkpoint and not yet covered by a signature/,
    );
  });

  it('edited row: exit 1 at that seq, and every checkpoint over it named too', async () => {
    await withTamperedLog(
      (client) => client.query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3").then(() => undefined),
      async () => {
        const result = await exportAndVerify();
        expect(result.code).toBe(1);
        expect(result.line).toMatch(/^audit log BROKEN at seq 3: content does not match its hash \(row edited\) \(4 findings; 14 rows verified\)/);
        expect(result.line.match(/also BROKEN at checkpoint (\d)/g)).toEqual(['also BROKEN at checkpoint 1', 'also BROKEN at checkpoint 2', 'also BROKEN at checkpoint 3']);
      },
    );
  });

  it('deleted row: exit 1 at that seq', async () => {
    await withTamperedLog(
      (client) => client.query('DELETE FROM audit_log WHERE seq = 7').then(() => undefined),
      async () => expect(await exportAndVerify()).toMatchObject({ code: 1, line: expect.stringMatching(/^audit log BROKEN at seq 7: row 7 is missing \(deleted\)/) }),
    );
  });

  it('reordered rows: exit 1 at the first moved seq', async () => {
    await withTamperedLog(
      (client) =>
        client.query('UPDATE audit_log SET seq = -2 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 4; UPDATE audit_log SET seq = 4 WHERE seq = -2').then(() => undefined),
      async () => expect(await exportAndVerify()).toMatchObject({ code: 1, line: expect.stringMatching(/^audit log BROKEN at seq 2: /) }),
    );
  });

  it('truncated tail (rows a checkpoint covers deleted): exit 1 naming the checkpoint the export itself holds', async () => {
    await withTamperedLog(
      (client) => client.query('DELETE FROM audit_log WHERE seq >= 9').then(() => undefined),
      async () => {
        const result = await exportAndVerify();
        expect(result.code).toBe(1);
        expect(result.line).toMatch(/^audit log BROKEN at checkpoint 2 \(seq 9\): it covers rows up to seq 10, but the export, which already holds this checkpoint, ends at seq 8 \(rows 9\.\.10 were deleted: truncated tail\)/);
        expect(result.line).toMatch(/also BROKEN at checkpoint 3 \(seq 9\): it covers rows up to seq 13/);
      },
    );
  });

  it('wholesale recomputed chain (row 3 edited, newest row deleted, every hash recomputed): exit 1 naming every checkpoint', async () => {
    await withTamperedLog(
      async (client) => {
        await client.query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3");
        await client.query('DELETE FROM audit_log WHERE seq = 15');
        await recomputeChain(client);
      },
      async () => {
        const result = await exportAndVerify();
        expect(result.code).toBe(1);
        expect(result.line).toMatch(/^audit log BROKEN at checkpoint 1 \(seq 5\): rows 1\.\.5 have the tree root [0-9a-f]{16}… but the signed root is [0-9a-f]{16}… \(rows 1\.\.5 were rewritten/);
        expect(result.line.match(/BROKEN at checkpoint \d/g)).toEqual(['BROKEN at checkpoint 1', 'BROKEN at checkpoint 2', 'BROKEN at checkpoint 3']);
      },
    );
  });

  it('altered checkpoint (its root replaced to match a rewritten log): exit 1 naming it', async () => {
    const records = await published();
    const note = records[1]!.note;
    const text = parseSignedNote(note).text;
    const lines = text.split('\n');
    lines[2] = Buffer.alloc(32, 7).toString('base64');
    records[1] = { ...records[1]!, note: note.replace(text, lines.join('\n')) };
    const file = join(dir, 'altered.jsonl');
    await writeRecords(file, records);
    const result = await exportAndVerify(file);
    expect(result).toMatchObject({ code: 1, line: expect.stringMatching(/^audit log BROKEN at checkpoint 2: the database's copy of checkpoint 2 differs from the published one/) });
    expect(result.line).toMatch(/also BROKEN at checkpoint 2: the signature of trusted key \S+ does not verify \(checkpoint altered or forged\)/);
  });

  it('forged checkpoint (appended, signed with an attacker\'s key under the log\'s name): exit 1 naming it', async () => {
    const records = await published();
    const attacker = ecdsaNoteSigner(records[0]!.note.split('\n')[0]!, LocalAuditSigner.fromKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey));
    const text = parseSignedNote(records[2]!.note).text.replace(/\n13\n/, '\n15\n');
    const forged: NoteCheckpointRecord = { kind: 'note', index: 4, time: new Date().toISOString(), note: await signNote(text, [attacker]) };
    const file = join(dir, 'forged.jsonl');
    await writeRecords(file, [...records, forged]);
    expect(await exportAndVerify(file)).toMatchObject({ code: 1, line: expect.stringMatching(/^audit log BROKEN at checkpoint 4: carries no signature of the log's key/) });
  });

  it('checkpoints re-signed with another key after recomputing the log: exit 1 naming each; presenting the attacker\'s public key instead is caught too', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const records = await published();
    const origin = records[0]!.note.split('\n')[0]!;
    const attacker = ecdsaNoteSigner(origin, LocalAuditSigner.fromKey(privateKey));
    const resigned = await Promise.all(records.map(async (record) => ({ ...record, note: await signNote(parseSignedNote(record.note).text, [attacker]) })));
    const file = join(dir, 'other-key.jsonl');
    await writeRecords(file, resigned);
    const result = await exportAndVerify(file);
    expect(result.code).toBe(1);
    expect(result.line.match(/checkpoint \d: carries no signature of the log's key/g)).toEqual(['checkpoint 1: carries no signature of the log\'s key', 'checkpoint 2: carries no signature of the log\'s key', 'checkpoint 3: carries no signature of the log\'s key']);
    const attackerKeyFile = join(dir, 'attacker.pub.pem');
    await writeFile(attackerKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    expect((await exportAndVerify(publishedFile, attackerKeyFile)).line).toMatch(/^audit log BROKEN at checkpoint 1: carries no signature of the log's key/);
    expect((await exportAndVerify(publishedFile, attackerKeyFile)).code).toBe(1);
  });

  it('checkpoint deleted from the published file: exit 1 naming the missing one', async () => {
    const records = await published();
    const file = join(dir, 'deleted.jsonl');
    await writeRecords(file, [records[0]!, records[2]!]);
    expect(await exportAndVerify(file)).toMatchObject({ code: 1, line: expect.stringMatching(/^audit log BROKEN at checkpoint 2: the published checkpoints lack checkpoint 2 \(removed from the published copy; the database's copy has it\)/) });
  });

  it('the database copy of the checkpoints wiped with the tail: the published file still exposes it (live; offline by the export\'s start time)', async () => {
    await harness.testDb.owner.pool.query('CREATE TABLE checkpoints_snapshot AS TABLE audit_checkpoints');
    try {
      await withTamperedLog(
        async (owner) => {
          await owner.query('DELETE FROM audit_log WHERE seq >= 12');
          await owner.query('DELETE FROM audit_checkpoints WHERE idx = 3');
        },
        async () => {
          expect(await verifyDatabase()).toMatchObject({ code: 1, line: expect.stringMatching(/^audit log BROKEN at checkpoint 3 \(seq 12\): it covers rows up to seq 13, but the log ends at seq 11/) });
          // Offline, the export was started after checkpoint 3 was signed (same clock here: no skew allowed).
          expect(await exportAndVerify(publishedFile, publicKeyFile, ['--clock-skew-seconds', '0'])).toMatchObject({
            code: 1,
            line: expect.stringMatching(/^audit log BROKEN at checkpoint 3 \(seq 12\): it covers rows up to seq 13, but it was signed at \S+, before the export started at \S+, yet the export ends at seq 11/),
          });
        },
      );
    } finally {
      await tamperAuditLog(harness.testDb.owner.pool, 'DELETE FROM audit_checkpoints; INSERT INTO audit_checkpoints SELECT * FROM checkpoints_snapshot');
    }
  });

  it('exits 2 with usage when the public key is missing or a file is unreadable', async () => {
    const lines: string[] = [];
    const output = { out: (line: string) => lines.push(line), err: (line: string) => lines.push(line) };
    expect(await runAuditVerify({}, output, ['--export', join(dir, 'export.ndjson')])).toBe(2);
    expect(lines.join('\n')).toMatch(/--public-key is required/);
    expect(await runAuditVerify({}, output, ['--export', join(dir, 'nope.ndjson'), '--public-key', publicKeyFile])).toBe(2);
    expect(lines.at(-1)).toMatch(/nope\.ndjson does not exist/);
    expect(await runAuditVerify({}, output, ['--export', join(dir, 'export.ndjson'), '--public-key', publicKeyFile, '--witness-quorum', '1'])).toBe(2);
    expect(lines.at(-1)).toMatch(/--witness-quorum 1 needs at least that many witnesses' keys/);
  });
});
