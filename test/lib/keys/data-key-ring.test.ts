import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataKeyRing } from '../../../lib/keys/data-key-ring.js';
import { AwsKmsKeyProvider } from '../../../lib/keys/aws-kms.js';
import { LocalKeyring } from '../../../lib/keys/local-keyring.js';
import { loadActiveTokenizer } from '../../../lib/keys/token-keys.js';
import { DecryptionError } from '../../../lib/errors.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { startFakeKms, type FakeKms } from '../../support/kms-server.js';

let testDb: TestDatabase;
let kms: FakeKms;

beforeAll(async () => {
  [testDb, kms] = await Promise.all([createTestDatabase(), startFakeKms()]);
});
afterAll(async () => {
  await Promise.all([testDb?.drop(), kms?.close()]);
});

const aad = Buffer.from('ip_v1_test');

describe('DataKeyRing', () => {
  it('calls KMS once per data key, not once per value, and stores only the wrapped key', async () => {
    const provider = new AwsKmsKeyProvider({ keyId: kms.createKey(), region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials });
    const ring = new DataKeyRing(testDb.owner.db, provider, { maxUses: 1000, maxAgeMs: 60_000 });
    const before = kms.calls.GenerateDataKey ?? 0;
    const sealed = await Promise.all(Array.from({ length: 200 }, (_, i) => ring.encrypt(Buffer.from(`10.0.0.${i}`), aad)));
    expect((kms.calls.GenerateDataKey ?? 0) - before).toBe(1);
    expect(new Set(sealed.map((s) => s.dataKeyId)).size).toBe(1);
    const { rows } = await testDb.owner.pool.query('SELECT wrapped_key FROM data_keys WHERE id = $1', [sealed[0]?.dataKeyId]);
    expect(rows[0].wrapped_key.length).toBeGreaterThan(32);
    provider.close();
  });

  it('rotates to a new data key after maxUses and after maxAge, and still decrypts old values', async () => {
    let now = 1_000;
    const ring = new DataKeyRing(testDb.owner.db, LocalKeyring.fromKey(randomBytes(32)), { maxUses: 2, maxAgeMs: 10_000 }, () => now);
    const a = await ring.encrypt(Buffer.from('a'), aad);
    const b = await ring.encrypt(Buffer.from('b'), aad);
    const c = await ring.encrypt(Buffer.from('c'), aad);
    expect(a.dataKeyId).toBe(b.dataKeyId);
    expect(c.dataKeyId).not.toBe(b.dataKeyId);
    now += 10_001;
    const d = await ring.encrypt(Buffer.from('d'), aad);
    expect(d.dataKeyId).not.toBe(c.dataKeyId);
    expect((await ring.decrypt(a.dataKeyId, a.ciphertext, aad)).toString()).toBe('a');
  });

  it('decrypts in another process (fresh ring) by unwrapping the stored key through the provider', async () => {
    const keyring = LocalKeyring.fromKey(randomBytes(32));
    const writer = new DataKeyRing(testDb.owner.db, keyring, { maxUses: 10, maxAgeMs: 60_000 });
    const sealed = await writer.encrypt(Buffer.from('593-47-5928'), aad);
    const reader = new DataKeyRing(testDb.owner.db, keyring, { maxUses: 10, maxAgeMs: 60_000 });
    expect((await reader.decrypt(sealed.dataKeyId, sealed.ciphertext, aad)).toString()).toBe('593-47-5928');
    await expect(reader.decrypt(sealed.dataKeyId, sealed.ciphertext, Buffer.from('device_id_v1_other'))).rejects.toBeInstanceOf(DecryptionError);
  });
});

describe('token key', () => {
  it('is generated once and agreed on by concurrent first starts', async () => {
    const fresh = await createTestDatabase();
    try {
      const keyring = LocalKeyring.fromKey(randomBytes(32));
      const tokenizers = await Promise.all(Array.from({ length: 5 }, () => loadActiveTokenizer(fresh.owner.db, keyring)));
      const tokens = new Set(tokenizers.map((t) => t.tokenize('ip', '1.2.3.4')));
      expect(tokens.size).toBe(1);
      const { rows } = await fresh.owner.pool.query('SELECT version, state FROM token_keys');
      expect(rows).toEqual([{ version: 1, state: 'active' }]);
    } finally {
      await fresh.drop();
    }
  });
});
