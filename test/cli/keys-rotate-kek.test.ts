import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsKmsKeyProvider } from '../../lib/keys/aws-kms.js';
import { DataKeyRing } from '../../lib/keys/data-key-ring.js';
import { loadActiveTokenizer } from '../../lib/keys/token-keys.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startFakeKms, type FakeKms } from '../support/kms-server.js';
import { makeLogins, writeLogins } from '../lib/keys/rotation/seed.js';
import { runCli } from '../support/processes.js';

let testDb: TestDatabase;
let kms: FakeKms;

beforeAll(async () => {
  [testDb, kms] = await Promise.all([createTestDatabase(), startFakeKms()]);
  kms.createKey('alias/old');
  const provider = new AwsKmsKeyProvider({ keyId: 'alias/old', region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials });
  const ring = new DataKeyRing(testDb.owner.db, provider, { maxUses: 10, maxAgeMs: 3_600_000 });
  await writeLogins(testDb.owner, ring, await loadActiveTokenizer(testDb.owner.db, provider), makeLogins(20, 10, 10));
  provider.close();
});
afterAll(async () => {
  await Promise.all([testDb?.drop(), kms?.close()]);
});

describe('npm run keys:rotate-kek', () => {
  it('rewraps every key under KMS_KEY_ID and reports counts as plain lines when stdout is not a terminal', async () => {
    const newArn = kms.createKey('alias/new');
    const run = await runCli('cli/keys-rotate-kek.ts', {
      DATABASE_URL: testDb.url,
      KMS_KEY_ID: 'alias/new',
      AWS_REGION: kms.region,
      AWS_ENDPOINT_URL: kms.endpoint,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      ROTATION_BATCH_SIZE: '2',
    });
    expect(run.stderr).not.toContain('failed');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('data_keys: 4/4 (100%)');
    expect(run.stdout).toContain('token_keys: 1 rewrapped, 0 already current; data_keys: 4 rewrapped, 0 already current');
    expect(run.stdout).toContain(`done: every key is wrapped by ${newArn}`);
    // No terminal control sequences in a log.
    expect(run.stdout).not.toContain('\u001b[');
    const { rows } = await testDb.owner.pool.query('SELECT DISTINCT kek_id FROM data_keys UNION SELECT kek_id FROM token_keys');
    expect(rows).toEqual([{ kek_id: newArn }]);
  });

  it('stops before touching anything when a required setting is missing, naming it', async () => {
    const [noDatabase, noKey] = await Promise.all([
      runCli('cli/keys-rotate-kek.ts', { AWS_REGION: 'us-east-1' }),
      runCli('cli/keys-rotate-kek.ts', { DATABASE_URL: testDb.url }),
    ]);
    expect(noDatabase.code).toBe(1);
    expect(noDatabase.stderr).toContain('DATABASE_URL: is required but not set');
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain('KMS_KEY_ID: is required but not set');
  });
});
