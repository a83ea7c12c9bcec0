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

  it('says which setting to check: AWS_ENDPOINT_URL_KMS when unreachable, KMS_KEY_ID when the key is missing or disabled, credentials when there are none', async () => {
    const unreachable = new AwsKmsKeyProvider({ keyId: 'alias/x', region: 'eu-west-1', endpoint: 'http://127.0.0.1:9', credentials: kms.credentials });
    await expect(unreachable.check()).rejects.toThrow(
      /^KMS DescribeKey failed: cannot reach the KMS endpoint http:\/\/127\.0\.0\.1:9 \(.+\); for a local or emulated KMS set AWS_ENDPOINT_URL_KMS \(or AWS_ENDPOINT_URL\), otherwise check AWS_REGION and the network$/,
    );
    unreachable.close();

    const missing = provider('alias/no-such-key');
    await expect(missing.check()).rejects.toThrow(/NotFoundException: .*; no key alias\/no-such-key at the KMS endpoint http:.* \(KMS_KEY_ID names the key, AWS_REGION its region\)$/);
    missing.close();

    const arn = kms.createKey();
    kms.disableKey(arn);
    const disabled = provider(arn);
    await expect(disabled.generateDataKey('vault-data-key')).rejects.toThrow(/DisabledException: .*; key .* is disabled or pending deletion: enable it, or point KMS_KEY_ID at an enabled key$/);
    disabled.close();

    const noCredentials = new AwsKmsKeyProvider({
      keyId: arn,
      region: kms.region,
      endpoint: kms.endpoint,
      credentials: async () => {
        throw Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
      },
    });
    await expect(noCredentials.check()).rejects.toMatchObject({
      code: 'aws_credentials_missing',
      message: expect.stringMatching(/no AWS credentials found .*; check AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY .*AWS_PROFILE, or the IAM role$/),
    });
    noCredentials.close();
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
