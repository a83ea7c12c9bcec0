import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsKmsKeyProvider } from '../../../lib/keys/aws-kms.js';
import { KeyProviderError } from '../../../lib/errors.js';
import { startFakeKms, type FakeKms } from '../../support/kms-server.js';

let kms: FakeKms;

beforeAll(async () => {
  kms = await startFakeKms();
});
afterAll(async () => {
  await kms.close();
});

function provider(keyId: string): AwsKmsKeyProvider {
  return new AwsKmsKeyProvider({ keyId, region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials });
}

describe('AWS KMS key provider over HTTP with the real SDK client', () => {
  it('generates a 256-bit data key whose wrapped form unwraps to the same bytes', async () => {
    const arn = kms.createKey('alias/tokenvault-test');
    const keys = provider('alias/tokenvault-test');
    const generated = await keys.generateDataKey('vault-data-key');
    expect(generated.plaintext).toHaveLength(32);
    expect(generated.kekId).toBe(arn);
    expect(generated.wrapped.includes(generated.plaintext)).toBe(false);
    await expect(keys.decryptDataKey(generated, 'vault-data-key')).resolves.toEqual(generated.plaintext);
    keys.close();
  });

  it('refuses to unwrap a key under another purpose (encryption context is bound)', async () => {
    const keys = provider(kms.createKey());
    const generated = await keys.generateDataKey('token-key');
    await expect(keys.decryptDataKey(generated, 'vault-data-key')).rejects.toMatchObject({ code: 'kms_InvalidCiphertextException', transient: false });
    keys.close();
  });

  it('rewraps a data key under a new KMS key without changing the key itself', async () => {
    const oldKeys = provider(kms.createKey());
    const generated = await oldKeys.generateDataKey('vault-data-key');
    const newArn = kms.createKey();
    const newKeys = provider(newArn);
    const rewrapped = await newKeys.rewrapDataKey(generated, 'vault-data-key');
    expect(rewrapped.kekId).toBe(newArn);
    await expect(newKeys.decryptDataKey(rewrapped, 'vault-data-key')).resolves.toEqual(generated.plaintext);
    oldKeys.close();
    newKeys.close();
  });

  it('reports a disabled key as a permanent error and an unreachable endpoint as transient', async () => {
    const arn = kms.createKey();
    kms.disableKey(arn);
    const disabled = provider(arn);
    await expect(disabled.generateDataKey('vault-data-key')).rejects.toMatchObject({ transient: false });
    await expect(disabled.check()).rejects.toBeInstanceOf(KeyProviderError);
    disabled.close();

    const unreachable = new AwsKmsKeyProvider({ keyId: arn, region: kms.region, endpoint: 'http://127.0.0.1:9', credentials: kms.credentials });
    await expect(unreachable.generateDataKey('vault-data-key')).rejects.toMatchObject({ code: 'kms_unreachable', transient: true });
    unreachable.close();
  });

  it('classifies a KMS internal error as transient', async () => {
    const keys = provider(kms.createKey());
    kms.fault = 'internal';
    try {
      await expect(keys.generateDataKey('vault-data-key')).rejects.toMatchObject({ transient: true });
    } finally {
      kms.fault = undefined;
    }
    keys.close();
  });
});
