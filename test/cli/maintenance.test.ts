import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ROOT, runProcess } from '../support/processes.js';

let testDb: TestDatabase;

// The run moves and drops the row: each case gets it fresh.
beforeEach(async () => {
  testDb = await createTestDatabase();
  // One old row in a month long past any retention: it sits in the default partition until maintenance.
  await testDb.owner.pool.query(
    `INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, app_version, create_date, sent_at, token_key_version)
     VALUES ('m-old', 'u-1', 'ios', 'ip_v1_x', 'device_id_v1_y', '2.3.0', '2020-02-03', '2020-02-03T10:00:00Z', 1)`,
  );
});
afterEach(async () => {
  await testDb?.drop();
});

const maintenance = (args: string[], env: Record<string, string>) => runProcess(`${ROOT}node_modules/.bin/tsx`, ['cli/maintenance.ts', ...args], env);

// Each case starts a real process (tsx): slow on a loaded machine.
describe('npm run maintenance', { timeout: 120_000 }, () => {
  it('stops at start naming a missing setting', async () => {
    const run = await maintenance([], {});
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('DATABASE_URL');
  });

  it('reports what a dry run would do and changes nothing', async () => {
    const run = await maintenance(['--dry-run'], { DATABASE_URL: testDb.url, LOGIN_RETENTION_DAYS: '400' });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('dry run: nothing changed');
    expect(run.stdout).toContain('default partition: 1 rows would move into user_logins_p202002');
    const { rows } = await testDb.owner.pool.query(`SELECT tableoid::regclass::text AS p FROM user_logins`);
    expect(rows).toEqual([{ p: 'user_logins_default' }]);
  });

  it('splits the default partition, then drops the expired month and prints what it removed', async () => {
    const run = await maintenance([], { DATABASE_URL: testDb.url, LOGIN_RETENTION_DAYS: '400', QUARANTINE_RETENTION_DAYS: '30' });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('default partition: 1 rows move into user_logins_p202002');
    expect(run.stdout).toContain('dropped 1 partitions, 1 rows (user_logins_p202002)');
    expect(run.stdout).toContain('quarantine retention (30 days): deleted 0 rows');
    const { rows } = await testDb.owner.pool.query(`SELECT count(*)::int AS n FROM user_logins`);
    expect(rows[0].n).toBe(0);
  });
});
