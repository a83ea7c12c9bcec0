import { describe, expect, it } from 'vitest';
import { parseEnv } from '../../../lib/config/env.js';
import { keyProviderConfig, keyProviderRefinement, sharedEnvSchema } from '../../../lib/config/shared.js';
import { ConfigError } from '../../../lib/errors.js';

const schema = sharedEnvSchema.superRefine(keyProviderRefinement);

describe('configuration', () => {
  it('names a missing required setting', () => {
    expect(() => parseEnv(schema, { KMS_KEY_ID: 'alias/x' })).toThrow(/DATABASE_URL: is required/);
  });

  it('names an invalid setting and lists every problem at once', () => {
    try {
      parseEnv(schema, { DATABASE_URL: 'mysql://x', DATABASE_POOL_SIZE: 'lots' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).settings).toEqual(expect.arrayContaining(['DATABASE_URL', 'DATABASE_POOL_SIZE']));
    }
  });

  it('treats an empty value as unset and applies defaults', () => {
    const env = parseEnv(schema, { DATABASE_URL: 'postgres://u@h/db', LOCAL_MASTER_KEY_FILE: '/tmp/k', LOG_LEVEL: '' });
    expect(env.LOG_LEVEL).toBe('info');
    expect(env.DATABASE_POOL_SIZE).toBe(10);
    expect(keyProviderConfig(env)).toEqual({ kind: 'local', file: '/tmp/k' });
  });

  it('prefers AWS KMS when KMS_KEY_ID is set, with the KMS-specific endpoint', () => {
    const env = parseEnv(schema, {
      DATABASE_URL: 'postgres://u@h/db',
      KMS_KEY_ID: 'alias/tokenvault',
      AWS_ENDPOINT_URL: 'http://localstack:4566',
      AWS_ENDPOINT_URL_KMS: 'http://kms:4566',
    });
    expect(keyProviderConfig(env)).toMatchObject({ kind: 'aws-kms', keyId: 'alias/tokenvault', endpoint: 'http://kms:4566' });
  });
});
