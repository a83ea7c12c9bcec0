import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { vaultAad } from '../../../../lib/crypto/vault-context.js';
import { AwsKmsKeyProvider } from '../../../../lib/keys/aws-kms.js';
import { DataKeyRing } from '../../../../lib/keys/data-key-ring.js';
import { loadActiveTokenizer, loadAllTokenizers } from '../../../../lib/keys/token-keys.js';
import { rotateKek, type KekProgress } from '../../../../lib/keys/rotation/rotate-kek.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { startFakeKms, type FakeKms } from '../../../support/kms-server.js';
import { makeLogins, writeLogins } from './seed.js';

let testDb: TestDatabase;
let kms: FakeKms;
let oldArn: string;
let newArn: string;
const providers: AwsKmsKeyProvider[] = [];
const logins = makeLogins(60, 20, 15);

function kmsProvider(keyId: string): AwsKmsKeyProvider {
  const provider = new AwsKmsKeyProvider({ keyId, region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials });
  providers.push(provider);
  return provider;
}

async function query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  return (await testDb.owner.pool.query(sql, params)).rows as T[];
}

// Each test gets its own database and KMS (one disables the old key) and rewraps what it needs.
beforeEach(async () => {
  [testDb, kms] = await Promise.all([createTestDatabase(), startFakeKms()]);
  oldArn = kms.createKey('alias/tokenvault-2023');
  newArn = kms.createKey('alias/tokenvault-2024');
  const oldKeys = kmsProvider('alias/tokenvault-2023');
  // The seed encrypts 120 times (each login's two values); a small maxUses spreads them over 6 data keys.
  const ring = new DataKeyRing(testDb.owner.db, oldKeys, { maxUses: 20, maxAgeMs: 3_600_000 });
  await writeLogins(testDb.owner, ring, await loadActiveTokenizer(testDb.owner.db, oldKeys), logins);
});
afterEach(async () => {
  for (const provider of providers.splice(0)) provider.close();
  await Promise.all([testDb?.drop(), kms?.close()]);
});

describe('rotate-kek', () => {
  it('rewraps every data key and token key under the new KMS key in resumable batches, leaving vault rows untouched', async () => {
    const vaultBefore = await query('SELECT token, ciphertext, data_key_id FROM pii_vault ORDER BY token');
    expect(await query('SELECT DISTINCT kek_id FROM data_keys UNION SELECT DISTINCT kek_id FROM token_keys')).toEqual([{ kek_id: oldArn }]);
    const [keys] = await query<{ n: number }>('SELECT count(*)::int AS n FROM data_keys');
    expect(keys?.n).toBe(6);

    // KMS_KEY_ID is the new key, given by alias; rows record the ARN KMS answers with.
    const newKeys = kmsProvider('alias/tokenvault-2024');
    const first = await rotateKek(testDb.owner, newKeys, { batchSize: 3, maxBatches: 1 });
    expect(first).toMatchObject({ kekId: newArn, completed: false, batches: 1 });
    // The probe (token key v1) plus one batch of three data keys.
    expect(first.rewrapped).toEqual({ token_keys: 1, data_keys: 3 });
    expect(first.remaining).toBe(3);

    const progress: KekProgress[] = [];
    const reEncryptsBefore = kms.calls.ReEncrypt ?? 0;
    const resumed = await rotateKek(testDb.owner, newKeys, { batchSize: 3, onProgress: (p) => progress.push(p) });
    expect(resumed).toMatchObject({ kekId: newArn, completed: true, remaining: 0 });
    expect(resumed.rewrapped).toEqual({ token_keys: 0, data_keys: 3 });
    expect(resumed.alreadyCurrent).toEqual({ token_keys: 1, data_keys: 3 });
    // Rows done by the first run are not sent to KMS again (the probe costs one call).
    expect((kms.calls.ReEncrypt ?? 0) - reEncryptsBefore).toBe(1 + 3);
    expect(progress.at(-1)).toEqual({ table: 'data_keys', done: 6, total: 6 });

    const rows = await query<{ kek_id: string; rewrapped: boolean }>(
      `SELECT kek_id, rewrapped_at IS NOT NULL AS rewrapped FROM data_keys UNION ALL SELECT kek_id, rewrapped_at IS NOT NULL FROM token_keys`,
    );
    expect(rows).toHaveLength(7);
    expect(rows.every((row) => row.kek_id === newArn && row.rewrapped)).toBe(true);
    // Rewrap, not re-encrypt: the vault is byte for byte what it was.
    expect(await query('SELECT token, ciphertext, data_key_id FROM pii_vault ORDER BY token')).toEqual(vaultBefore);
  });

  it('keeps every value revealable with the old KMS key disabled', async () => {
    await expect(rotateKek(testDb.owner, kmsProvider('alias/tokenvault-2024'))).resolves.toMatchObject({ kekId: newArn, completed: true });
    kms.disableKey(oldArn);
    const oldKeys = kmsProvider(oldArn);
    await expect(oldKeys.check()).rejects.toMatchObject({ code: 'kms_key_disabled' });

    const newKeys = kmsProvider(newArn);
    const tokenizer = (await loadAllTokenizers(testDb.owner.db, newKeys)).get(1)?.tokenizer;
    const ring = new DataKeyRing(testDb.owner.db, newKeys, { maxUses: 5, maxAgeMs: 3_600_000 });
    const vault = new Map(
      (await query<{ token: string; ciphertext: Buffer; data_key_id: number }>('SELECT token, ciphertext, data_key_id FROM pii_vault')).map((row) => [
        row.token,
        row,
      ]),
    );
    expect(vault.size).toBe(35);
    for (const login of logins) {
      for (const [field, value] of [
        ['ip', login.ip],
        ['device_id', login.deviceId],
      ] as const) {
        const token = tokenizer?.tokenize(field, value) ?? '';
        const row = vault.get(token);
        if (row === undefined) throw new Error(`no vault row for ${field}`);
        expect((await ring.decrypt(row.data_key_id, row.ciphertext, vaultAad(token))).toString()).toBe(value);
      }
    }
  });

  it('has nothing to do when run again', async () => {
    await expect(rotateKek(testDb.owner, kmsProvider('alias/tokenvault-2024'))).resolves.toMatchObject({ kekId: newArn, completed: true });
    const again = await rotateKek(testDb.owner, kmsProvider('alias/tokenvault-2024'));
    expect(again).toMatchObject({ completed: true, remaining: 0, batches: 0, rewrapped: { token_keys: 0, data_keys: 0 } });
    expect(again.alreadyCurrent).toEqual({ token_keys: 1, data_keys: 6 });
  });
});
