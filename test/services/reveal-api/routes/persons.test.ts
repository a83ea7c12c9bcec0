import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runAuditVerify } from '../../../../cli/audit-verify.js';
import { auditRows, bearer, startRevealHarness, type RevealHarness, type SeededValue } from '../support.js';

let harness: RevealHarness;
let officeIp: SeededValue;
let homeIp: SeededValue;
let annaDevice: SeededValue;
let benDevice: SeededValue;

const ANNA = 'a0000000-0000-4000-8000-000000000001';
const BEN = 'b0000000-0000-4000-8000-000000000002';
const REQUEST = { purpose: 'data subject request under GDPR art. 15/17', ticket: 'DSR-2024-117' };

// Every test starts from the same three logins on a fresh database: erasure changes them.
beforeEach(async () => {
  harness = await startRevealHarness();
  [officeIp, homeIp, annaDevice, benDevice] = (await harness.seed([
    { field: 'ip', value: '203.0.113.10' },
    { field: 'ip', value: '198.51.100.77' },
    { field: 'device_id', value: '123-45-6789' },
    { field: 'device_id', value: '987-65-4321' },
  ])) as [SeededValue, SeededValue, SeededValue, SeededValue];
  // Anna logs in from the office (shared with Ben) and from home, in two months (two partitions).
  const rows = [
    ['m-anna-1', ANNA, officeIp.token, annaDevice.token, '2024-02-10T09:00:00Z'],
    ['m-anna-2', ANNA, homeIp.token, annaDevice.token, '2024-03-05T21:00:00Z'],
    ['m-ben-1', BEN, officeIp.token, benDevice.token, '2024-03-06T09:00:00Z'],
  ];
  for (const [messageId, userId, ip, device, sentAt] of rows) {
    await harness.testDb.owner.pool.query(
      `INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version, create_date, sent_at, token_key_version)
       VALUES ($1, $2, 'ios', $3, $4, 'RU', '2.3.0', ($5::timestamptz AT TIME ZONE 'UTC')::date, $5, 1)`,
      [messageId, userId, ip, device, sentAt],
    );
  }
  await harness.testDb.owner.pool.query(`SELECT user_logins_prepare_month('2024-02-01'), user_logins_prepare_month('2024-03-01')`);
});
afterEach(async () => {
  await harness?.close();
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
    expect(document.counts).toEqual({ rows: 2, partitions: 2, distinct_values: { ip: 2, device_id: 1 }, revealed: 3, masked: 0, withheld: 0, not_found: 0 });
    expect(document.logins.map((login: { message_id: string }) => login.message_id)).toEqual(['m-anna-1', 'm-anna-2']);
    expect(document.logins[0]).toMatchObject({
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
    expect(rows).toEqual([{ message_id: 'm-ben-1' }]);

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
    for (const value of ['203.0.113.10', '198.51.100.77', '123-45-6789', '987-65-4321']) {
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
    expect(rowCount).toBe(1);
  });
});
