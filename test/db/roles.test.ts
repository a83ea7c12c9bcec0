import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  await testDb?.drop();
});

const PERMISSION_DENIED = { code: '42501' };

describe('least-privilege database roles', () => {
  it('lets analyst read user_logins but denies pii_vault, keys, quarantine and the audit log', async () => {
    const analyst = testDb.as('analyst');
    await expect(analyst.pool.query('SELECT count(*) FROM user_logins')).resolves.toBeDefined();
    for (const table of ['pii_vault', 'data_keys', 'token_keys', 'quarantine', 'audit_log']) {
      await expect(analyst.pool.query(`SELECT * FROM ${table}`), table).rejects.toMatchObject(PERMISSION_DENIED);
    }
  });

  it('lets auditor read only the audit log', async () => {
    const auditor = testDb.as('auditor');
    await expect(auditor.pool.query('SELECT count(*) FROM audit_log')).resolves.toBeDefined();
    for (const table of ['user_logins', 'pii_vault', 'data_keys', 'quarantine']) {
      await expect(auditor.pool.query(`SELECT * FROM ${table}`), table).rejects.toMatchObject(PERMISSION_DENIED);
    }
  });

  it('lets the ingestor insert but not read analytics rows or vault values', async () => {
    const ingestor = testDb.as('ingestor');
    await expect(ingestor.pool.query('SELECT * FROM user_logins')).rejects.toMatchObject(PERMISSION_DENIED);
    await expect(ingestor.pool.query('SELECT * FROM pii_vault')).rejects.toMatchObject(PERMISSION_DENIED);
    await expect(ingestor.pool.query('DELETE FROM user_logins')).rejects.toMatchObject(PERMISSION_DENIED);
  });

  it('lets reveal_api read the vault and append to the audit log but not read analytics rows', async () => {
    const reveal = testDb.as('reveal_api');
    await expect(reveal.pool.query('SELECT count(*) FROM pii_vault')).resolves.toBeDefined();
    await expect(reveal.pool.query('SELECT * FROM user_logins')).rejects.toMatchObject(PERMISSION_DENIED);
    await expect(reveal.pool.query('SELECT * FROM quarantine')).rejects.toMatchObject(PERMISSION_DENIED);
  });

  it('lets reveal_api keep budgets and reveal requests without deleting them, and keeps analysts out', async () => {
    const reveal = testDb.as('reveal_api');
    for (const table of ['reveal_budget_usage', 'reveal_requests']) {
      await expect(reveal.pool.query(`SELECT count(*) FROM ${table}`), table).resolves.toBeDefined();
      await expect(reveal.pool.query(`DELETE FROM ${table}`), table).rejects.toMatchObject(PERMISSION_DENIED);
      await expect(testDb.as('analyst').pool.query(`SELECT * FROM ${table}`), table).rejects.toMatchObject(PERMISSION_DENIED);
      await expect(testDb.as('ingestor').pool.query(`SELECT * FROM ${table}`), table).rejects.toMatchObject(PERMISSION_DENIED);
    }
    await expect(testDb.as('auditor').pool.query('SELECT count(*) FROM reveal_requests')).resolves.toBeDefined();
  });

  it('refuses UPDATE, DELETE and TRUNCATE on the audit log, even for the owner', async () => {
    await testDb.owner.pool.query(
      `INSERT INTO audit_log (seq, occurred_at, action, outcome, hash) VALUES (1, now(), 'reveal', 'allowed', '\\x00')`,
    );
    await expect(testDb.owner.pool.query(`UPDATE audit_log SET outcome = 'denied'`)).rejects.toThrow(/append-only/);
    await expect(testDb.owner.pool.query('DELETE FROM audit_log')).rejects.toThrow(/append-only/);
    await expect(testDb.owner.pool.query('TRUNCATE audit_log')).rejects.toThrow(/append-only/);
  });
});
