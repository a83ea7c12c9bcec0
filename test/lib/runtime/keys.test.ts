import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyProviderConfig } from '../../../lib/config/shared.js';
import { KeysUnusableError, openKeys } from '../../../lib/runtime/keys.js';
import { startFakeKms, type FakeKms } from '../../support/kms-server.js';

let kms: FakeKms;
let dir: string;

beforeAll(async () => {
  kms = await startFakeKms();
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-open-keys-'));
});
afterAll(async () => {
  await kms.close();
  await rm(dir, { recursive: true, force: true });
});

const kmsKey = (keyId: string): KeyProviderConfig => ({ kind: 'aws-kms', keyId, region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials });

describe('openKeys', () => {
  it('opens the KMS key the settings name, checked usable when asked', async () => {
    const arn = kms.createKey('alias/tokenvault-open-keys');
    const keys = await openKeys(kmsKey('alias/tokenvault-open-keys'), { check: true });
    expect((await keys.generateDataKey('vault-data-key')).kekId).toBe(arn);
    keys.close();
  });

  it('stops naming KMS_KEY_ID when the key does not exist, with the provider\'s reason as the cause', async () => {
    const failure = await openKeys(kmsKey('alias/no-such-key'), { check: true }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(KeysUnusableError);
    expect((failure as KeysUnusableError).message).toMatch(/^the key provider is not usable: .*alias\/no-such-key.* \(KMS_KEY_ID\)$/);
    expect(String((failure as KeysUnusableError).cause)).toMatch(/NotFoundException/);
  });

  it('does not call KMS unless asked: a service that waits for KMS starts without it', async () => {
    const keys = await openKeys({ kind: 'aws-kms', keyId: 'alias/x', region: kms.region, endpoint: 'http://127.0.0.1:9', credentials: kms.credentials });
    expect(keys.description).toContain('alias/x');
    keys.close();
  });

  it('opens (creating on first use) the local keyring file', async () => {
    const keys = await openKeys({ kind: 'local', file: join(dir, 'master.key') }, { check: true });
    const generated = await keys.generateDataKey('vault-data-key');
    await expect(keys.decryptDataKey(generated, 'vault-data-key')).resolves.toEqual(generated.plaintext);
    keys.close();
  });
});
