import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { parseExportLine } from '../../../../lib/audit/export-format.js';
import type { RevealApp } from '../../../../services/reveal-api/app.js';
import { freshRevealTestFor } from '../../../support/reveal-fixture.js';
import { bearer, PURPOSE, type RevealHarness, type SeededValue } from '../../../support/reveal-harness.js';
import { tamperAuditLog } from '../../../support/tamper-audit-log.js';

// A fresh log per test: seq numbers and checkpoint indexes below are absolute.
const it = freshRevealTestFor({
  env: (dir) => ({ AUDIT_SIGNING_KEY_FILE: join(dir, 'signing-key.pem'), AUDIT_CHECKPOINT_INTERVAL_SECONDS: '0', AUDIT_CHECKPOINT_LOG: 'false' }),
});

// The test's own harness, bound for the helpers below.
let harness: RevealHarness;
let app: RevealApp;
let ip: SeededValue;
let auditor: Record<string, string>;
let alice: Record<string, string>;

it.beforeEach(async ({ harness: fresh, sample }) => {
  harness = fresh;
  app = harness.app;
  ip = sample.ip;
  auditor = bearer(await harness.token('audrey', ['auditor']));
  alice = bearer(await harness.token('alice', ['investigator']));
});

async function reveal(count: number) {
  for (let index = 0; index < count; index += 1) {
    await app.inject({ method: 'POST', url: '/reveal', headers: alice, payload: { tokens: [ip.token], purpose: PURPOSE } });
  }
}

async function verify(query = '') {
  const response = await app.inject({ url: `/audit/verify${query}`, headers: auditor });
  expect(response.statusCode).toBe(200);
  return response.json() as Record<string, unknown> & { checked: number; head: { seq: number } };
}

describe('GET /audit/verify with checkpoints', () => {
  it('reports the newest verified checkpoint and the uncovered rows, then verifies incrementally', async () => {
    await reveal(4);
    await app.auditCheckpointer!.checkpointNow();
    await reveal(2);
    const first = await verify();
    expect(first).toMatchObject({
      ok: true,
      mode: 'full',
      checked: 6,
      head: { seq: 6, hash: expect.stringMatching(/^[0-9a-f]{64}$/) },
      checkpoints: 1,
      checkpoint: { index: 1, kind: 'note', seq: 4, key_id: expect.stringMatching(/^[0-9a-f]{64}$/), signature_ok: true, signer: 'signed note', cosigned_by: [] },
      findings: [],
      root: expect.stringMatching(/^[0-9a-f]{64}$/),
      uncovered: { from_seq: 5, to_seq: 6 },
      message: expect.stringMatching(/rows 5\.\.6 are after the last checkpoint and not yet covered by a signature/),
    });
    // The verify call itself appended row 7; the next call reads only that one.
    const second = await verify('?incremental=true');
    expect(second).toMatchObject({ ok: true, mode: 'incremental', checked: 1, head: { seq: 7 }, verified_rows: 7, uncovered: { from_seq: 5, to_seq: 7 } });
    await app.auditCheckpointer!.checkpointNow();
    expect(await verify('?incremental=true')).toMatchObject({ ok: true, mode: 'incremental', checked: 1, checkpoints: 2, checkpoint: { index: 2, seq: 8 }, uncovered: null });
  });

  it('parallel calls share one run and /healthz keeps answering meanwhile', async () => {
    await reveal(20);
    const responses = await Promise.all([
      ...Array.from({ length: 6 }, () => app.inject({ url: '/audit/verify', headers: auditor })),
      app.inject({ url: '/healthz' }),
    ]);
    expect(responses.every((response) => response.statusCode === 200)).toBe(true);
    const verdicts = responses.slice(0, 6).map((response) => response.json() as { checked: number; head: { seq: number } });
    // One full run served all six: same head, same count.
    expect(new Set(verdicts.map((verdict) => `${verdict.head.seq}/${verdict.checked}`)).size).toBe(1);
  });

  it('an incremental run notices a rewritten anchor row and falls back to a full run that names it', async () => {
    await reveal(3);
    const before = await verify('?incremental=true');
    const seq = before.head.seq;
    const owner = harness.testDb.owner.pool;
    try {
      await tamperAuditLog(owner, `UPDATE audit_log SET hash = decode(repeat('00', 32), 'hex') WHERE seq = ${seq}`);
      const broken = await verify('?incremental=true');
      expect(broken).toMatchObject({ ok: false, mode: 'full', first_broken_seq: seq, reason: expect.stringMatching(/edited/) });
    } finally {
      await tamperAuditLog(owner, `DELETE FROM audit_log WHERE seq >= ${seq}`);
    }
  });
});

describe('GET /audit/export', () => {
  it('streams its start line, NDJSON rows in seq order, then the checkpoints; resumes after a seq', async () => {
    await reveal(4);
    await app.auditCheckpointer!.checkpointNow();
    await reveal(2);
    await app.auditCheckpointer!.checkpointNow();
    const response = await app.inject({ url: '/audit/export', headers: auditor });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const lines = response.body.trimEnd().split('\n').map((line, index) => parseExportLine(line, index + 1));
    const rows = lines.flatMap((line) => (line.type === 'row' ? [line.row.seq] : []));
    const checkpoints = lines.flatMap((line) => (line.type === 'checkpoint' ? [line.record.index] : []));
    expect(rows).toEqual(Array.from({ length: rows.length }, (_, index) => index + 1));
    expect(checkpoints).toEqual([1, 2]);
    expect(lines[0]).toMatchObject({ type: 'export_start', start: { afterSeq: 0, startedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) } });
    expect(lines.findIndex((line) => line.type === 'checkpoint')).toBe(rows.length + 1);

    const resumed = await app.inject({ url: '/audit/export?after_seq=5', headers: auditor });
    const resumedRows = resumed.body.trimEnd().split('\n').map((line, index) => parseExportLine(line, index + 1)).flatMap((line) => (line.type === 'row' ? [line.row.seq] : []));
    expect(resumedRows[0]).toBe(6);
    expect(resumedRows.at(-1)).toBeGreaterThan(rows.at(-1)!); // the first export's own audit row is there now
  });

  /** A log big enough (~30k rows, ~15 MB of NDJSON) that an export nobody reads stays running. Not a valid chain: the export does not verify. */
  async function fillLog(rows: number) {
    await harness.testDb.owner.pool.query(
      `INSERT INTO audit_log (seq, occurred_at, action, actor, roles, request_id, purpose, tokens, field_counts, outcome, reason, prev_hash, hash)
       SELECT h.seq + g, now(), 'reveal', 'filler', '{investigator}', 'fill-' || g, repeat('p', 300), ARRAY['ip_v1_' || md5(g::text)], '{"ip":1}', 'allowed', 'revealed=1',
              decode(md5((g - 1)::text) || md5((g - 1)::text), 'hex'), decode(md5(g::text) || md5(g::text), 'hex')
       FROM generate_series(1, $1::int) AS g, (SELECT coalesce(max(seq), 0) AS seq FROM audit_log) AS h`,
      [rows],
    );
  }

  it('runs one export at a time per replica: another is refused (429 export_busy, Retry-After, audited) until the first ends or its client goes away', async () => {
    await fillLog(30_000);
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const first = new AbortController();
    const running = await fetch(`${address}/audit/export`, { headers: auditor, signal: first.signal });
    expect(running.status).toBe(200);
    // Nobody reads the first download: the export process is held up by the full pipe, not finished.
    const second = await fetch(`${address}/audit/export`, { headers: auditor });
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('30');
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('export_busy');
    const { rows } = await harness.testDb.owner.pool.query<{ action: string; outcome: string; reason: string }>('SELECT action, outcome, reason FROM audit_log ORDER BY seq DESC LIMIT 1');
    expect(rows[0]).toEqual({ action: 'audit_export', outcome: 'rate_limited', reason: 'export_busy' });

    first.abort();
    await expect
      .poll(async () => {
        const next = await fetch(`${address}/audit/export?after_seq=30000`, { headers: auditor });
        await next.arrayBuffer();
        return next.status;
      }, { timeout: 20_000, interval: 200 })
      .toBe(200);
  });

  it('cuts the download off, rather than ending it short, when the export fails midway', async () => {
    await reveal(3);
    await app.auditCheckpointer!.checkpointNow();
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    // The rows can be read, the checkpoints that follow them cannot.
    await harness.testDb.owner.pool.query('REVOKE SELECT ON audit_checkpoints FROM reveal_api');
    try {
      const response = await fetch(`${address}/audit/export`, { headers: auditor });
      expect(response.status).toBe(200);
      await expect(response.text()).rejects.toThrow();
      await expect.poll(() => harness.logs.some((line) => line.includes('audit export failed; the download was cut off'))).toBe(true);
    } finally {
      await harness.testDb.owner.pool.query('GRANT SELECT ON audit_checkpoints TO reveal_api');
    }
  });

  it('is refused (403, audited) without the audit permission', async () => {
    const response = await app.inject({ url: '/audit/export', headers: alice });
    expect(response.statusCode).toBe(403);
    const { rows } = await harness.testDb.owner.pool.query<{ action: string; outcome: string }>('SELECT action, outcome FROM audit_log ORDER BY seq DESC LIMIT 1');
    expect(rows[0]).toEqual({ action: 'audit_export', outcome: 'denied' });
  });

  it('serves the checkpoint public key as PEM, and 404 when checkpoints are off', async () => {
    const response = await app.inject({ url: '/audit/public-key' });
    expect(response.statusCode).toBe(200);
    expect(response.body).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    const plain = await harness.buildApp({ AUDIT_SIGNING_KEY_FILE: '' });
    expect((await plain.inject({ url: '/audit/public-key' })).json()).toMatchObject({ error: { code: 'not_configured' } });
  });
});

describe('GET /audit/verify without checkpoints configured', () => {
  it('leaves out `checkpoint` (this server signs none) and still names the uncovered rows', async () => {
    await reveal(2);
    const plain = await harness.buildApp({ AUDIT_SIGNING_KEY_FILE: '' });
    const response = await plain.inject({ url: '/audit/verify', headers: auditor });
    const body = response.json() as Record<string, unknown>;
    expect(body).not.toHaveProperty('checkpoint');
    expect(body).toMatchObject({ ok: true, mode: 'full', uncovered: { from_seq: expect.any(Number) } });
  });
});
