import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { runAuditVerify } from '../../../../cli/audit-verify.js';
import { DataKeyRing } from '../../../../lib/keys/data-key-ring.js';
import { LocalKeyring } from '../../../../lib/keys/local-keyring.js';
import { loadActiveTokenizer } from '../../../../lib/keys/token-keys.js';
import { KnownTokens } from '../../../../services/ingestor/known-tokens.js';
import { createSink } from '../../../../services/ingestor/sink.js';
import { freshRevealTestFor } from '../../../support/reveal-fixture.js';
import { auditRows, bearer, type RevealHarness, type SeededValue } from '../../../support/reveal-harness.js';

// Every test starts from the same logins on a fresh database: erasure changes them.
const it = freshRevealTestFor({
  seed: [
    { field: 'ip', value: '203.0.113.10' },
    { field: 'ip', value: '198.51.100.77' },
    { field: 'ip', value: '192.0.2.55' },
    { field: 'device_id', value: '123-45-6789' },
    { field: 'device_id', value: '987-65-4321' },
  ],
});

// The test's own harness and values, bound for the helpers below.
let harness: RevealHarness;
let officeIp: SeededValue;
let homeIp: SeededValue;
let benHomeIp: SeededValue;
let annaDevice: SeededValue;
let benDevice: SeededValue;

const ANNA = 'a0000000-0000-4000-8000-000000000001';
const BEN = 'b0000000-0000-4000-8000-000000000002';
const REQUEST = { purpose: 'data subject request under GDPR art. 15/17', ticket: 'DSR-2024-117' };

/** Stores logins the way the ingestor does (its sink, as the ingestor role): tokens, vault rows and each row's tag. */
async function ingest(logins: { messageId: string; userId: string; ip: string; deviceId: string; sentAt: string }[]): Promise<void> {
  const database = harness.testDb.as('ingestor');
  const keys = LocalKeyring.fromKey(Buffer.from(harness.keyringMaster));
  const tokenizer = await loadActiveTokenizer(database.db, keys);
  const sink = createSink({
    database,
    dataKeys: new DataKeyRing(database.db, keys, { maxUses: 1000, maxAgeMs: 60_000 }),
    tokenizer: () => tokenizer,
    knownTokens: new KnownTokens(0),
  });
  const result = await sink.write(
    logins.map(({ messageId, userId, ip, deviceId, sentAt }) => ({
      messageId,
      body: JSON.stringify({ user_id: userId, app_version: '2.3.0', device_type: 'ios', ip, locale: 'RU', device_id: deviceId }),
      sentAt: new Date(sentAt),
      receiveCount: 1,
    })),
  );
  expect(result.stored).toBe(logins.length);
}

it.beforeEach(async ({ harness: fresh, seeded }) => {
  harness = fresh;
  [officeIp, homeIp, benHomeIp, annaDevice, benDevice] = seeded as [SeededValue, SeededValue, SeededValue, SeededValue, SeededValue];
  // Anna logs in from the office (shared with Ben) and from home, in two months (two partitions);
  // Ben from the office and from his home. Dated outside the prepared months, the rows land in the
  // default partition and move into their months' partitions below, tags and all.
  await ingest([
    { messageId: 'm-anna-1', userId: ANNA, ip: officeIp.value, deviceId: annaDevice.value, sentAt: '2024-02-10T09:00:00Z' },
    { messageId: 'm-anna-2', userId: ANNA, ip: homeIp.value, deviceId: annaDevice.value, sentAt: '2024-03-05T21:00:00Z' },
    { messageId: 'm-ben-1', userId: BEN, ip: officeIp.value, deviceId: benDevice.value, sentAt: '2024-03-06T09:00:00Z' },
    { messageId: 'm-ben-2', userId: BEN, ip: benHomeIp.value, deviceId: benDevice.value, sentAt: '2024-03-07T20:00:00Z' },
  ]);
  await harness.testDb.owner.pool.query(`SELECT user_logins_prepare_month('2024-02-01'), user_logins_prepare_month('2024-03-01')`);
});

async function post(url: string, roles: string[], payload: Record<string, unknown>) {
  return harness.app.inject({ method: 'POST', url, headers: bearer(await harness.token('olga', roles)), payload });
}

describe('requests about one person', () => {
  it('requires the privacy-officer role, a purpose and a ticket, and audits refusals', async () => {
    const noTicket = await post('/persons/access', ['privacy-officer'], { user_id: ANNA, purpose: REQUEST.purpose });
    expect(noTicket.statusCode).toBe(400);
    const investigator = await post('/persons/access', ['investigator'], { user_id: ANNA, ...REQUEST });
    expect(investigator.statusCode).toBe(403);
    expect(investigator.json().error.code).toBe('forbidden');
    const erase = await post('/persons/erase', ['investigator', 'support'], { user_id: ANNA, ...REQUEST });
    expect(erase.statusCode).toBe(403);
    const rows = await auditRows(harness.testDb);
    expect(rows.filter((row) => row.outcome === 'denied').map((row) => row.action)).toEqual(['person.access', 'person.erase']);
  });

  it('access: every row of the person across partitions, as one document, values revealed per the policy, audited first', async () => {
    const response = await post('/persons/access', ['privacy-officer'], { user_id: ANNA, ...REQUEST });
    expect(response.statusCode).toBe(200);
    const document = response.json();
    expect(document.user_id).toBe(ANNA);
    expect(document.counts).toEqual({
      rows: 2,
      partitions: 2,
      distinct_values: { ip: 2, device_id: 1 },
      revealed: 3,
      masked: 0,
      withheld: 0,
      not_found: 0,
      rows_verified: 2,
      rows_unauthenticated: 0,
      rows_failed_authentication: 0,
    });
    expect(document.failed_authentication).toEqual([]);
    expect(document.logins.map((login: { message_id: string }) => login.message_id)).toEqual(['m-anna-1', 'm-anna-2']);
    expect(document.logins[0]).toMatchObject({
      authentication: 'verified',
      create_date: '2024-02-10',
      device_type: 'ios',
      app_version: '2.3.0',
      ip: { token: officeIp.token, value: '203.0.113.10', redaction: 'none' },
      device_id: { token: annaDevice.token, value: '123-45-6789', redaction: 'none' },
    });
    expect(document.logins[1].ip).toEqual({ token: homeIp.token, value: '198.51.100.77', redaction: 'none' });
    expect(document.not_included).toContain('Quarantined');
    const row = (await auditRows(harness.testDb)).at(-1);
    expect(row).toMatchObject({ action: 'person.access', actor: 'olga', outcome: 'allowed', ticket: REQUEST.ticket, purpose: REQUEST.purpose });
    expect(row?.field_counts).toEqual({ rows: 2, ip: 2, device_id: 1 });
    expect([...(row?.tokens ?? [])].sort()).toEqual([officeIp.token, homeIp.token, annaDevice.token].sort());
    expect(row?.reason).toContain(`user_id=${ANNA}`);
  });

  it('access shows each field only as the policy allows: masked, or withheld with its token', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tokenvault-policy-'));
    try {
      const file = join(dir, 'policy.json');
      await writeFile(file, JSON.stringify({ roles: { 'dpo-assistant': { person: { access: { ip: 'masked' } } } } }));
      const app = await harness.buildApp({ POLICY_FILE: file });
      const response = await app.inject({
        method: 'POST',
        url: '/persons/access',
        headers: bearer(await harness.token('dora', ['dpo-assistant'])),
        payload: { user_id: ANNA, ...REQUEST },
      });
      expect(response.statusCode).toBe(200);
      const document = response.json();
      expect(document.logins[0].ip).toEqual({ token: officeIp.token, value: '203.0.*.*', redaction: 'masked' });
      expect(document.logins[0].device_id).toEqual({ token: annaDevice.token, error: 'withheld' });
      expect(document.counts).toMatchObject({ revealed: 0, masked: 2, withheld: 1 });
      // Access does not grant erasure.
      const erase = await app.inject({
        method: 'POST',
        url: '/persons/erase',
        headers: bearer(await harness.token('dora', ['dpo-assistant'])),
        payload: { user_id: ANNA, ...REQUEST },
      });
      expect(erase.statusCode).toBe(403);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("access: a login the database owner re-pointed to another person's IP is not served but reported, and nobody's IP leaks", async () => {
    // The owner (all rights) makes Anna's home login point at Ben's home IP.
    await harness.testDb.owner.pool.query(`UPDATE user_logins SET masked_ip = $1 WHERE message_id = 'm-anna-2'`, [benHomeIp.token]);
    const response = await post('/persons/access', ['privacy-officer'], { user_id: ANNA, ...REQUEST });
    expect(response.statusCode).toBe(200);
    expect(response.body).not.toContain('192.0.2.55');
    expect(response.body).not.toContain(benHomeIp.token);
    const document = response.json();
    expect(document.logins.map((login: { message_id: string }) => login.message_id)).toEqual(['m-anna-1']);
    expect(document.failed_authentication).toEqual([{ message_id: 'm-anna-2', create_date: '2024-03-05', partition: 'user_logins_p202403', reason: 'tag_mismatch' }]);
    expect(document.counts).toMatchObject({ rows: 1, rows_verified: 1, rows_failed_authentication: 1 });
    // Reported: an error in the log, the metric, the audit row (which names no token of the failed row).
    expect(harness.logs.some((line) => line.includes('"level":50') && line.includes('failed authentication'))).toBe(true);
    const metrics = await (await harness.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('tokenvault_person_rows_total{action="person.access",authentication="failed"} 1');
    const row = (await auditRows(harness.testDb)).at(-1);
    expect(row?.reason).toContain('failed_authentication=1');
    expect(row?.tokens).not.toContain(benHomeIp.token);

    // Moving the login to another day, or to another person, fails the same way.
    await harness.testDb.owner.pool.query(`UPDATE user_logins SET masked_ip = $1 WHERE message_id = 'm-anna-2'`, [homeIp.token]);
    await harness.testDb.owner.pool.query(`UPDATE user_logins SET sent_at = sent_at + interval '1 hour' WHERE message_id = 'm-anna-1'`);
    await harness.testDb.owner.pool.query(`UPDATE user_logins SET user_id = $1 WHERE message_id = 'm-ben-2'`, [ANNA]);
    const again = (await post('/persons/access', ['privacy-officer'], { user_id: ANNA, ...REQUEST })).json();
    expect(again.logins.map((login: { message_id: string }) => login.message_id)).toEqual(['m-anna-2']);
    expect(again.failed_authentication.map((failed: { message_id: string }) => failed.message_id).sort()).toEqual(['m-anna-1', 'm-ben-2']);
    expect(JSON.stringify(again)).not.toContain('192.0.2.55');
  });

  it('access: a tag the owner copies from another row, or a key version that does not exist, fails too', async () => {
    // Ben's tag on Anna's row (the owner cannot compute one, so he borrows one).
    await harness.testDb.owner.pool.query(
      `UPDATE user_logins AS a SET row_mac = b.row_mac, masked_ip = b.masked_ip FROM user_logins AS b WHERE a.message_id = 'm-anna-2' AND b.message_id = 'm-ben-2'`,
    );
    await harness.testDb.owner.pool.query(`UPDATE user_logins SET row_mac_key_version = 99 WHERE message_id = 'm-anna-1'`);
    const document = (await post('/persons/access', ['privacy-officer'], { user_id: ANNA, ...REQUEST })).json();
    expect(document.logins).toEqual([]);
    expect(document.failed_authentication.map((failed: { reason: string }) => failed.reason).sort()).toEqual(['tag_mismatch', 'unknown_key_version']);
  });

  it('access marks logins ingested before row authentication (no tag) as such, rather than failing them', async () => {
    // A row as an earlier release wrote it: no tag.
    await harness.testDb.owner.pool.query(
      `INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version, create_date, sent_at, token_key_version)
       VALUES ('m-anna-0', $1, 'android', $2, $3, NULL, '2.2.0', '2024-02-01', '2024-02-01T08:00:00Z', 1)`,
      [ANNA, homeIp.token, annaDevice.token],
    );
    const document = (await post('/persons/access', ['privacy-officer'], { user_id: ANNA, ...REQUEST })).json();
    expect(document.logins[0]).toMatchObject({
      message_id: 'm-anna-0',
      authentication: 'unauthenticated',
      authentication_note: 'unauthenticated: ingested before row authentication',
      ip: { token: homeIp.token, value: '198.51.100.77', redaction: 'none' },
    });
    expect(document.logins[1]).toMatchObject({ message_id: 'm-anna-1', authentication: 'verified' });
    expect(document.logins[1]).not.toHaveProperty('authentication_note');
    expect(document.counts).toMatchObject({ rows: 3, rows_verified: 2, rows_unauthenticated: 1, rows_failed_authentication: 0 });
    expect((await auditRows(harness.testDb)).at(-1)?.reason).toContain('unauthenticated=1 failed_authentication=0');
    // Erasure deletes it with the others.
    const erased = (await post('/persons/erase', ['privacy-officer'], { user_id: ANNA, ...REQUEST })).json();
    expect(erased).toMatchObject({ rows_deleted: 3, rows_unauthenticated: 1, rows_failed_authentication: 0 });
  });

  it("erasure never acts on a forged row: a login of Ben's the owner moved to Anna is neither deleted nor lets Ben's IP be shredded", async () => {
    // Ben's home login, the only row using his home IP, now claims to be Anna's.
    await harness.testDb.owner.pool.query(`UPDATE user_logins SET user_id = $1 WHERE message_id = 'm-ben-2'`, [ANNA]);
    const response = await post('/persons/erase', ['privacy-officer'], { user_id: ANNA, ...REQUEST });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({
      rows_deleted: 2,
      values_shredded: { ip: 1, device_id: 1 },
      rows_failed_authentication: 1,
      failed_authentication: [{ message_id: 'm-ben-2', create_date: '2024-03-07', partition: 'user_logins_p202403', reason: 'tag_mismatch' }],
    });
    expect(body.note).toContain('were not deleted');
    const vault = (await harness.testDb.owner.pool.query<{ token: string }>('SELECT token FROM pii_vault')).rows.map((row) => row.token);
    expect(vault).toContain(benHomeIp.token);
    expect(vault).toContain(benDevice.token);
    const { rows } = await harness.testDb.owner.pool.query('SELECT message_id FROM user_logins ORDER BY 1');
    expect(rows).toEqual([{ message_id: 'm-ben-1' }, { message_id: 'm-ben-2' }]);
    expect((await auditRows(harness.testDb)).at(-1)?.reason).toContain('failed_authentication=1 (not deleted)');
    const metrics = (await harness.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('tokenvault_person_rows_total{action="person.erase",authentication="failed"} 1');
  });

  it("erasure: deletes the person's rows in every partition and shreds only the values no one else uses, saying which were kept", async () => {
    const response = await post('/persons/erase', ['privacy-officer'], { user_id: ANNA, ...REQUEST });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({
      user_id: ANNA,
      rows_deleted: 2,
      partitions: ['user_logins_p202402', 'user_logins_p202403'],
      values_shredded: { ip: 1, device_id: 1 },
      values_kept: { ip: 1, device_id: 0 },
    });
    expect(body.note).toContain("other people's rows still reference them");
    const vault = await harness.testDb.owner.pool.query<{ token: string }>('SELECT token FROM pii_vault');
    const left = vault.rows.map((row) => row.token);
    expect(left).toContain(officeIp.token); // Ben's row still uses the office IP
    expect(left).toContain(benDevice.token);
    expect(left).not.toContain(homeIp.token);
    expect(left).not.toContain(annaDevice.token);
    const { rows } = await harness.testDb.owner.pool.query('SELECT message_id FROM user_logins ORDER BY 1');
    expect(rows).toEqual([{ message_id: 'm-ben-1' }, { message_id: 'm-ben-2' }]);
    expect(body).toMatchObject({ rows_unauthenticated: 0, rows_failed_authentication: 0, failed_authentication: [] });

    const row = (await auditRows(harness.testDb)).at(-1);
    expect(row).toMatchObject({ action: 'person.erase', actor: 'olga', outcome: 'allowed', ticket: REQUEST.ticket });
    expect(row?.field_counts).toEqual({ rows: 2, ip: 1, device_id: 1, kept: 1 });
    expect([...(row?.tokens ?? [])].sort()).toEqual([homeIp.token, annaDevice.token].sort());
  });

  it('is idempotent: a repeated erasure changes nothing and says so; access then finds nothing', async () => {
    expect((await post('/persons/erase', ['privacy-officer'], { user_id: ANNA, ...REQUEST })).json()).toMatchObject({ rows_deleted: 2 });
    const again = await post('/persons/erase', ['privacy-officer'], { user_id: ANNA, ...REQUEST });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ rows_deleted: 0, partitions: [], values_shredded: { ip: 0, device_id: 0 }, values_kept: { ip: 0, device_id: 0 } });
    expect(again.json().note).toContain('nothing changed');
    const access = await post('/persons/access', ['privacy-officer'], { user_id: ANNA, ...REQUEST });
    expect(access.json()).toMatchObject({ counts: { rows: 0 }, logins: [] });
  });

  it('keeps every request in the intact audit chain, and plaintext out of audit rows and logs', async () => {
    // A refusal, an access and an erasure: each leaves an audit row and log lines.
    expect((await post('/persons/access', ['investigator'], { user_id: ANNA, ...REQUEST })).statusCode).toBe(403);
    expect((await post('/persons/access', ['privacy-officer'], { user_id: ANNA, ...REQUEST })).statusCode).toBe(200);
    expect((await post('/persons/erase', ['privacy-officer'], { user_id: ANNA, ...REQUEST })).statusCode).toBe(200);
    const lines: string[] = [];
    expect(await runAuditVerify({ DATABASE_URL: harness.testDb.url }, { out: (l) => lines.push(l), err: (l) => lines.push(l) })).toBe(0);
    const dump = JSON.stringify(await harness.testDb.owner.pool.query('SELECT * FROM audit_log').then((r) => r.rows));
    for (const value of ['203.0.113.10', '198.51.100.77', '192.0.2.55', '123-45-6789', '987-65-4321']) {
      expect(dump).not.toContain(value);
      expect(harness.logs.join('\n')).not.toContain(value);
    }
  });

  it('rolls the erasure back when its audit row cannot be written', async () => {
    await harness.testDb.owner.pool.query('REVOKE INSERT ON audit_log FROM reveal_api');
    try {
      const response = await post('/persons/erase', ['privacy-officer'], { user_id: BEN, ...REQUEST });
      expect(response.statusCode).toBe(503);
      expect(response.json().error.code).toBe('audit_unavailable');
    } finally {
      await harness.testDb.owner.pool.query('GRANT INSERT ON audit_log TO reveal_api');
    }
    const { rowCount } = await harness.testDb.owner.pool.query(`SELECT 1 FROM user_logins WHERE user_id = $1`, [BEN]);
    expect(rowCount).toBe(2);
  });
});
