import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { vaultAad } from '../../../../lib/crypto/vault-context.js';
import { AwsKmsKeyProvider } from '../../../../lib/keys/aws-kms.js';
import { DataKeyRing } from '../../../../lib/keys/data-key-ring.js';
import { loadActiveTokenizer, loadAllTokenizers } from '../../../../lib/keys/token-keys.js';
import { rotateTokenKey, type TokenKeyProgress } from '../../../../lib/keys/rotation/rotate-token-key.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { startFakeKms, type FakeKms } from '../../../support/kms-server.js';
import { LoginRowAuthenticator, type StoredLoginRow } from '../../../../lib/keys/login-row-keys.js';
import { makeLogins, writeLogins, type Login } from './seed.js';

let testDb: TestDatabase;
let kms: FakeKms;
let provider: AwsKmsKeyProvider;
const logins: Login[] = [];
const policy = { maxUses: 1_000_000, maxAgeMs: 3_600_000 };

// Every test starts at token key version 1 on a fresh database and rotates up to the version it is about.
beforeEach(async () => {
  logins.length = 0;
  [testDb, kms] = await Promise.all([createTestDatabase(), startFakeKms()]);
  kms.createKey('alias/tokenvault');
  provider = new AwsKmsKeyProvider({ keyId: 'alias/tokenvault', region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials });
  // 240 logins over 60 IPs and 45 devices: 105 distinct values in the vault.
  logins.push(...makeLogins(240, 60, 45));
  const ring = new DataKeyRing(testDb.owner.db, provider, policy);
  await writeLogins(testDb.owner, ring, await loadActiveTokenizer(testDb.owner.db, provider), logins);
});
afterEach(async () => {
  provider?.close();
  await Promise.all([testDb?.drop(), kms?.close()]);
});

async function query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  return (await testDb.owner.pool.query(sql, params)).rows as T[];
}

/** Completed rotations up to `version` (from version 1): what the earlier steps of the story leave behind. */
async function rotatedTo(version: number): Promise<void> {
  for (let next = 2; next <= version; next += 1) {
    await expect(rotateTokenKey(testDb.owner, provider, { dataKeyPolicy: policy, batchSize: 20, settleSeconds: 0 })).resolves.toMatchObject({
      version: next,
      completed: true,
    });
  }
}

/** The state every completed rotation must leave behind, whatever interruptions happened. */
async function expectFullyRotated(version: number, expected: Login[]): Promise<void> {
  const tokenizer = (await loadAllTokenizers(testDb.owner.db, provider)).get(version)?.tokenizer;
  if (tokenizer === undefined) throw new Error(`token key ${version} missing`);

  const rows = await query<{ message_id: string; masked_ip: string; masked_device_id: string; token_key_version: number }>(
    'SELECT message_id, masked_ip, masked_device_id, token_key_version FROM user_logins',
  );
  expect(rows).toHaveLength(expected.length);
  const byId = new Map(rows.map((row) => [row.message_id, row]));
  for (const login of expected) {
    // Equal originals give equal tokens: each row carries exactly the token the new key computes.
    expect(byId.get(login.messageId)).toEqual({
      message_id: login.messageId,
      masked_ip: tokenizer.tokenize('ip', login.ip),
      masked_device_id: tokenizer.tokenize('device_id', login.deviceId),
      token_key_version: version,
    });
  }

  const vault = await query<{ token: string; ciphertext: Buffer; data_key_id: number; token_key_version: number }>(
    'SELECT token, ciphertext, data_key_id, token_key_version FROM pii_vault',
  );
  const originals = new Map<string, string>();
  for (const login of expected) {
    originals.set(tokenizer.tokenize('ip', login.ip) ?? '', login.ip);
    originals.set(tokenizer.tokenize('device_id', login.deviceId) ?? '', login.deviceId);
  }
  // One vault row per distinct value: nothing lost, nothing duplicated.
  expect(vault.map((row) => row.token).sort()).toEqual([...originals.keys()].sort());
  const ring = new DataKeyRing(testDb.owner.db, provider, policy);
  for (const row of vault) {
    expect(row.token_key_version).toBe(version);
    const plaintext = await ring.decrypt(row.data_key_id, row.ciphertext, vaultAad(row.token));
    expect(plaintext.toString()).toBe(originals.get(row.token));
  }

  // Every row is tagged again under the new version, over its new tokens.
  const checks = await rowChecks();
  expect([...new Set(checks.map(({ check }) => JSON.stringify(check)))]).toEqual([JSON.stringify({ status: 'verified', keyVersion: version })]);

  // No plaintext reached the analytics table on the way.
  const dump = JSON.stringify(await query('SELECT * FROM user_logins'));
  for (const login of expected) {
    expect(dump).not.toContain(login.ip);
    expect(dump).not.toContain(login.deviceId);
  }
}

/** Every user_logins row with the outcome of its tag check (as the reveal-api checks it). */
async function rowChecks(): Promise<{ message_id: string; check: unknown }[]> {
  const rows = await query<StoredLoginRow>(
    `SELECT message_id, user_id, to_char(create_date, 'YYYY-MM-DD') AS create_date, (extract(epoch FROM sent_at) * 1000)::text AS sent_at_ms,
            device_type, locale, app_version, masked_ip, masked_device_id, row_mac, row_mac_key_version
       FROM user_logins ORDER BY message_id`,
  );
  const authenticator = new LoginRowAuthenticator(testDb.owner.pool, provider);
  return Promise.all(rows.map(async (row) => ({ message_id: row.message_id, check: await authenticator.check(row) })));
}

describe('rotate-token-key', () => {
  it('tags rewritten rows again under the new version, but never re-tags an edited row or tags a row that had no tag', async () => {
    const [edited, legacy] = logins as [Login, Login];
    // The owner re-points one login to another value's token; another row predates row authentication.
    await testDb.owner.pool.query(`UPDATE user_logins SET masked_ip = (SELECT masked_ip FROM user_logins WHERE message_id <> $1 AND masked_ip <> u.masked_ip LIMIT 1) FROM user_logins AS u WHERE user_logins.message_id = $1 AND u.message_id = $1`, [edited.messageId]);
    await testDb.owner.pool.query(`UPDATE user_logins SET row_mac = NULL, row_mac_key_version = NULL WHERE message_id = $1`, [legacy.messageId]);
    expect((await rowChecks()).find((row) => row.message_id === edited.messageId)?.check).toEqual({ status: 'failed', reason: 'tag_mismatch' });

    const result = await rotateTokenKey(testDb.owner, provider, { dataKeyPolicy: policy, batchSize: 20, settleSeconds: 0 });
    expect(result).toMatchObject({ version: 2, completed: true, remaining: { vault: 0, userLogins: 0 } });
    const checks = new Map((await rowChecks()).map((row) => [row.message_id, row.check]));
    expect(checks.get(edited.messageId)).toEqual({ status: 'failed', reason: 'tag_mismatch' });
    expect(checks.get(legacy.messageId)).toEqual({ status: 'unauthenticated' });
    const others = [...checks].filter(([id]) => id !== edited.messageId && id !== legacy.messageId);
    expect(others).toHaveLength(logins.length - 2);
    expect(others.every(([, check]) => JSON.stringify(check) === JSON.stringify({ status: 'verified', keyVersion: 2 }))).toBe(true);
    // Counted once per column rewritten (its ip and its device_id moved in different batches).
    expect(result.loginRowsFailedAuthentication).toBe(2);
    // The edited row's tokens moved like everyone's: the rotation maps values, it does not repair rows.
    const [row] = await query<{ masked_ip: string; token_key_version: number }>('SELECT masked_ip, token_key_version FROM user_logins WHERE message_id = $1', [edited.messageId]);
    expect(row).toMatchObject({ token_key_version: 2 });
    expect(row?.masked_ip.startsWith('ip_v2_')).toBe(true);
  });

  it('moves every vault and user_logins row to a new key version; equal values stay equal and still reveal', async () => {
    const [before] = await query<{ n: number }>('SELECT count(*)::int AS n FROM pii_vault');
    expect(before?.n).toBe(105);

    const result = await rotateTokenKey(testDb.owner, provider, { dataKeyPolicy: policy, batchSize: 20, settleSeconds: 0 });

    expect(result).toMatchObject({ version: 2, created: true, completed: true, vaultRowsRetokenized: 105, vaultRowsGone: 0 });
    expect(result.remaining).toEqual({ vault: 0, userLogins: 0 });
    expect(result.userLoginTokensRewritten).toEqual({ ip: 240, device_id: 240 });
    expect(result.batches).toBe(6);
    expect(await query('SELECT version, state FROM token_keys ORDER BY version')).toEqual([
      { version: 1, state: 'retired' },
      { version: 2, state: 'active' },
    ]);
    await expectFullyRotated(2, logins);
  });

  it('resumes an interrupted rotation without creating another version, and never leaves a row half-rotated', async () => {
    await rotatedTo(2);
    const interrupted = await rotateTokenKey(testDb.owner, provider, { dataKeyPolicy: policy, batchSize: 20, settleSeconds: 0, maxBatches: 1 });
    expect(interrupted).toMatchObject({ version: 3, created: true, completed: false, batches: 1, vaultRowsRetokenized: 20 });
    expect(interrupted.remaining.vault).toBe(85);

    // Mid-rotation every token in user_logins still has its vault row, and a row claims
    // version 3 only when both its tokens are version 3.
    const [orphans] = await query<{ n: number }>(
      `SELECT count(*)::int AS n FROM user_logins u
        WHERE NOT EXISTS (SELECT 1 FROM pii_vault v WHERE v.token = u.masked_ip)
           OR NOT EXISTS (SELECT 1 FROM pii_vault v WHERE v.token = u.masked_device_id)`,
    );
    expect(orphans?.n).toBe(0);
    const mixed = await query(
      `SELECT 1 FROM user_logins WHERE token_key_version = 3 AND NOT (masked_ip LIKE 'ip\\_v3\\_%' AND masked_device_id LIKE 'device\\_id\\_v3\\_%')`,
    );
    expect(mixed).toHaveLength(0);

    const abort = new AbortController();
    const aborted = await rotateTokenKey(testDb.owner, provider, {
      dataKeyPolicy: policy,
      batchSize: 20,
      settleSeconds: 0,
      signal: abort.signal,
      onProgress: (progress) => {
        if (progress.phase === 'retokenize' && progress.done > 0) abort.abort();
      },
    });
    expect(aborted).toMatchObject({ version: 3, created: false, completed: false, batches: 1 });

    const resumed = await rotateTokenKey(testDb.owner, provider, { dataKeyPolicy: policy, batchSize: 20, settleSeconds: 0 });
    expect(resumed).toMatchObject({ version: 3, created: false, completed: true, vaultRowsRetokenized: 65 });
    expect(await query(`SELECT version FROM token_keys WHERE state = 'active'`)).toEqual([{ version: 3 }]);
    await expectFullyRotated(3, logins);
  });

  it('catches rows an ingestor that has not switched yet writes with the old key during the rotation', async () => {
    await rotatedTo(3);
    const oldTokenizer = await loadActiveTokenizer(testDb.owner.db, provider);
    const late = makeLogins(10, 10, 10, 7);
    const ring = new DataKeyRing(testDb.owner.db, provider, policy);
    let wrote = false;
    const result = await rotateTokenKey(testDb.owner, provider, {
      dataKeyPolicy: policy,
      batchSize: 20,
      settleSeconds: 0,
      onProgress: async (progress) => {
        // Between two batches, an ingestor still on version 3 stores ten new logins.
        if (progress.phase === 'retokenize' && progress.done > 0 && !wrote) {
          wrote = true;
          await writeLogins(testDb.owner, ring, oldTokenizer, late);
        }
      },
    });
    expect(wrote).toBe(true);
    expect(result).toMatchObject({ version: 4, completed: true, vaultRowsRetokenized: 105 + 20 });
    expect(result.remaining).toEqual({ vault: 0, userLogins: 0 });
    await expectFullyRotated(4, [...logins, ...late]);
    logins.push(...late);
  });

  it('waits out the settle period of a fresh version instead of starting another, and refuses a second concurrent run', async () => {
    await rotatedTo(4);
    // Version 4 was activated moments ago: a run now resumes it and first waits until every
    // ingestor must have switched (settleSeconds after the activation).
    // "Moments ago" made exact: the previous test may have taken longer than the settle period on a busy machine.
    await testDb.owner.pool.query('UPDATE token_keys SET created_at = now() WHERE version = 4');
    const events: TokenKeyProgress[] = [];
    let second: Promise<unknown> | undefined;
    const first = rotateTokenKey(testDb.owner, provider, {
      dataKeyPolicy: policy,
      settleSeconds: 1,
      onProgress: (progress) => {
        events.push(progress);
        second ??= rotateTokenKey(testDb.owner, provider, { dataKeyPolicy: policy, settleSeconds: 0 }).catch((error: unknown) => error);
      },
    });
    await expect(first).resolves.toMatchObject({ version: 4, created: false, completed: true });
    await expect(second).resolves.toMatchObject({ code: 'job_already_running' });
    expect(events[0]).toEqual({ phase: 'settle', version: 4, secondsLeft: 1 });
    expect(events.at(-1)).toMatchObject({ phase: 'retokenize', version: 4 });

    // Once settled and complete, the next run starts version 5.
    await expect(rotateTokenKey(testDb.owner, provider, { dataKeyPolicy: policy, settleSeconds: 0 })).resolves.toMatchObject({
      version: 5,
      created: true,
      completed: true,
    });
    await expectFullyRotated(5, logins);
  });
});
