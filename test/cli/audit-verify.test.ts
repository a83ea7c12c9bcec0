import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { runAuditExport } from '../../cli/audit-export.js';
import { runAuditVerify } from '../../cli/audit-verify.js';
import { freshRevealTestFor } from '../support/reveal-fixture.js';
import { auditVerify } from '../support/audit-cli.js';
import { bearer, PURPOSE, type RevealHarness, type SeededValue } from '../support/reveal-harness.js';
import { tamperAuditLog } from '../support/tamper-audit-log.js';

const it = freshRevealTestFor();

// The test's own harness, bound for the helpers below.
let harness: RevealHarness;
let ip: SeededValue;

// Every test starts from the same six-row log on a fresh database (the cases below break rows 2..5).
it.beforeEach(async ({ harness: fresh, sample }) => {
  harness = fresh;
  ip = sample.ip;
  await fillLog(6);
});

async function fillLog(count: number) {
  const headers = bearer(await harness.token('alice', ['investigator']));
  for (let index = 0; index < count; index += 1) {
    await harness.app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: [ip.token], purpose: PURPOSE } });
  }
}

function verify() {
  return auditVerify({ DATABASE_URL: harness.testDb.url });
}

/** Each case runs against its own saved copy of the log and its Merkle tree (rows appended meanwhile have nodes too). */
async function withRestoredLog(run: () => Promise<void>) {
  const owner = harness.testDb.owner.pool;
  for (const table of ['audit_log', 'audit_tree_nodes']) {
    await owner.query(`CREATE TABLE IF NOT EXISTS ${table}_snapshot AS TABLE ${table} WITH NO DATA`);
    await owner.query(`TRUNCATE ${table}_snapshot`);
    await owner.query(`INSERT INTO ${table}_snapshot SELECT * FROM ${table}`);
  }
  try {
    await run();
  } finally {
    await tamperAuditLog(owner, async (client) => {
      for (const table of ['audit_log', 'audit_tree_nodes']) await client.query(`DELETE FROM ${table}; INSERT INTO ${table} SELECT * FROM ${table}_snapshot`);
    });
  }
}

describe('npm run audit:verify', () => {
  it('reports an intact chain with exit code 0, reading as the auditor role', async () => {
    const result = await verify();
    expect(result.code).toBe(0);
    expect(result.text).toMatch(/^audit log intact: 6 rows checked \(head seq 6 hash [0-9a-f]{64}\); 0 checkpoints; no signed checkpoint yet \(the first is signed within one checkpoint interval of the first audit row\); rows 1\.\.6 are after the last checkpoint and not yet covered by a signature \[checkpoints from the database/);
  });

  it('exits 1 and names the first broken seq when a row was edited', async () => {
    await withRestoredLog(async () => {
      await tamperAuditLog(harness.testDb.owner.pool, "UPDATE audit_log SET purpose = 'routine check' WHERE seq = 3");
      expect(await verify()).toEqual({ code: 1, text: expect.stringMatching(/^audit log BROKEN at seq 3: content does not match its hash/) });
    });
  });

  it('detects a deleted row', async () => {
    await withRestoredLog(async () => {
      await tamperAuditLog(harness.testDb.owner.pool, 'DELETE FROM audit_log WHERE seq = 4');
      expect(await verify()).toEqual({ code: 1, text: expect.stringMatching(/BROKEN at seq 4: row 4 is missing/) });
    });
  });

  it('detects reordered rows', async () => {
    await withRestoredLog(async () => {
      await tamperAuditLog(harness.testDb.owner.pool, 'UPDATE audit_log SET seq = -2 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 5; UPDATE audit_log SET seq = 5 WHERE seq = -2');
      expect(await verify()).toMatchObject({ code: 1, text: expect.stringMatching(/BROKEN at seq 2/) });
    });
  });

  it('exposes the same verdict to auditors at GET /audit/verify', async () => {
    await withRestoredLog(async () => {
      await tamperAuditLog(harness.testDb.owner.pool, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2");
      const response = await harness.app.inject({ url: '/audit/verify', headers: bearer(await harness.token('audrey', ['auditor'])) });
      // Every finding, not only the first: the other five rows still verify.
      expect(response.json()).toMatchObject({ ok: false, checked: 5, first_broken_seq: 2, reason: expect.stringMatching(/edited/), findings: [{ seq: 2, message: expect.stringMatching(/edited/) }] });
    });
    const response = await harness.app.inject({ url: '/audit/verify', headers: bearer(await harness.token('audrey', ['auditor'])) });
    expect(response.json()).toMatchObject({ ok: true });
  });

  it('exits 2 with the setting named when DATABASE_URL is missing and no local stack runs', async () => {
    const lines: string[] = [];
    const empty = await mkdtemp(join(tmpdir(), 'tokenvault-test-nostack-'));
    try {
      expect(await runAuditVerify({ TOKENVAULT_DATA_DIR: empty }, { out: (line) => lines.push(line), err: (line) => lines.push(line) })).toBe(2);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
    expect(lines.join('\n')).toMatch(/DATABASE_URL/);
  });

  it('without DATABASE_URL, verifies and exports the database of the npm start running from the data directory (as npm run token finds its key)', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tokenvault-test-stack-'));
    // A live process standing in for the running npm start.
    const stack = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      await writeFile(join(dataDir, 'local-stack.json'), JSON.stringify({ pid: stack.pid, databaseUrl: harness.testDb.url }));
      const lines: string[] = [];
      expect(await runAuditVerify({ TOKENVAULT_DATA_DIR: dataDir }, { out: (line) => lines.push(line), err: (line) => lines.push(line) })).toBe(0);
      expect(lines.join('\n')).toMatch(/audit log intact/);
      // audit:export finds it the same way: the README's command needs no DATABASE_URL.
      const exported = join(dataDir, 'audit.ndjson');
      const exportLines: string[] = [];
      expect(await runAuditExport(['--out', exported], { TOKENVAULT_DATA_DIR: dataDir }, { out: (line) => exportLines.push(line), err: (line) => exportLines.push(line) })).toBe(0);
      expect(exportLines.join('\n')).toMatch(/exported \d+ rows and 0 checkpoints/);
      stack.kill();
      await new Promise((resolve) => stack.once('exit', resolve));
      // The npm start is gone: its file no longer counts.
      expect(await runAuditVerify({ TOKENVAULT_DATA_DIR: dataDir }, { out: () => undefined, err: () => undefined })).toBe(2);
      const gone: string[] = [];
      expect(await runAuditExport(['--out', exported], { TOKENVAULT_DATA_DIR: dataDir }, { out: (line) => gone.push(line), err: (line) => gone.push(line) })).toBe(2);
      expect(gone.join('\n')).toMatch(/DATABASE_URL is not set and no npm start runs from this directory/);
    } finally {
      stack.kill();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
