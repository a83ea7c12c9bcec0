import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AwsKmsKeyProvider } from '../../lib/keys/aws-kms.js';
import { DataKeyRing } from '../../lib/keys/data-key-ring.js';
import { loadActiveTokenizer } from '../../lib/keys/token-keys.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startFakeKms, type FakeKms } from '../support/kms-server.js';
import { makeLogins, writeLogins } from '../lib/keys/rotation/seed.js';
import { runCli } from '../support/processes.js';

let testDb: TestDatabase;
let kms: FakeKms;
let env: Record<string, string>;

// Rotating and truncating change the keys: each case starts from version 1 on a fresh database.
beforeEach(async () => {
  [testDb, kms] = await Promise.all([createTestDatabase(), startFakeKms()]);
  kms.createKey('alias/tokenvault');
  const provider = new AwsKmsKeyProvider({ keyId: 'alias/tokenvault', region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials });
  const ring = new DataKeyRing(testDb.owner.db, provider, { maxUses: 1000, maxAgeMs: 3_600_000 });
  // 40 logins over 20 IPs and 15 devices: 35 vault rows.
  await writeLogins(testDb.owner, ring, await loadActiveTokenizer(testDb.owner.db, provider), makeLogins(40, 20, 15));
  provider.close();
  env = {
    DATABASE_URL: testDb.url,
    KMS_KEY_ID: 'alias/tokenvault',
    AWS_REGION: kms.region,
    AWS_ENDPOINT_URL: kms.endpoint,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    ROTATION_BATCH_SIZE: '10',
    TOKEN_KEY_SETTLE_SECONDS: '0',
  };
});
afterEach(async () => {
  await Promise.all([testDb?.drop(), kms?.close()]);
});

describe('npm run keys:rotate-token-key', () => {
  it('activates version 2, re-tokenises everything and reports the final counts', async () => {
    const run = await runCli('cli/keys-rotate-token-key.ts', env);
    expect(run.stderr).not.toContain('failed');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('vault rows -> v2: 35/35 (100%)');
    expect(run.stdout).toContain(
      'token key v2 activated by this run: 35 vault rows re-tokenised, 40 masked_ip and 40 masked_device_id values rewritten',
    );
    expect(run.stdout).toContain('done: all vault values are under token key v2');
    const { rows } = await testDb.owner.pool.query(
      `SELECT (SELECT count(*)::int FROM user_logins WHERE token_key_version = 2) AS logins,
              (SELECT count(*)::int FROM pii_vault WHERE token_key_version = 2) AS vault`,
    );
    expect(rows).toEqual([{ logins: 40, vault: 35 }]);
  });

  it('refuses to run before any token key exists, saying what to do', async () => {
    await testDb.owner.pool.query('TRUNCATE user_logins, pii_vault, token_keys');
    const run = await runCli('cli/keys-rotate-token-key.ts', env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('(token_key_missing)');
    expect(run.stderr).toContain('start the ingestor once');
  });
});
