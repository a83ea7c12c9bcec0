import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../lib/errors.js';
import { loadIngestorConfig } from '../../../services/ingestor/config.js';

const minimal = {
  SQS_QUEUE_URL: 'http://localhost:4566/000000000000/login-queue',
  DATABASE_URL: 'postgres://tokenvault@localhost:5432/tokenvault',
  KMS_KEY_ID: 'alias/tokenvault',
};

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadIngestorConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('ingestor configuration', () => {
  it('applies defaults to a minimal environment', () => {
    const config = loadIngestorConfig(minimal);
    expect(config.sqs).toEqual({
      queueUrl: minimal.SQS_QUEUE_URL,
      region: 'us-east-1',
      endpoint: undefined,
      waitTimeSeconds: 20,
      visibilityTimeoutSeconds: undefined,
    });
    // Adaptive by default: nothing to set on real SQS.
    expect(config.pollers).toEqual({ initial: 4, min: 1, max: 64 });
    expect(config.inFlight).toEqual({ messages: 5000, bytes: 32 * 1024 * 1024 });
    expect(config.tokenKeyRefreshMs).toBe(30_000);
    expect(config.metrics).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(config.keyProvider).toMatchObject({ kind: 'aws-kms', keyId: 'alias/tokenvault' });
    expect(config.database).toEqual({ url: minimal.DATABASE_URL, role: undefined, poolSize: 10 });
  });

  it('uses AWS_ENDPOINT_URL_SQS, else AWS_ENDPOINT_URL, for SQS', () => {
    expect(loadIngestorConfig({ ...minimal, AWS_ENDPOINT_URL: 'http://localhost:4566' }).sqs.endpoint).toBe('http://localhost:4566');
    expect(
      loadIngestorConfig({ ...minimal, AWS_ENDPOINT_URL: 'http://localhost:4566', AWS_ENDPOINT_URL_SQS: 'http://localhost:9324' }).sqs.endpoint,
    ).toBe('http://localhost:9324');
  });

  it('drops unknown fields by default; INGEST_UNKNOWN_FIELDS=quarantine makes them quarantine', () => {
    expect(loadIngestorConfig(minimal).unknownFields).toBe('drop');
    expect(loadIngestorConfig({ ...minimal, INGEST_UNKNOWN_FIELDS: 'quarantine' }).unknownFields).toBe('quarantine');
    expect(configError({ ...minimal, INGEST_UNKNOWN_FIELDS: 'ignore' }).message).toContain('INGEST_UNKNOWN_FIELDS: must be one of: drop, quarantine');
  });

  it('disables the metrics server with METRICS_PORT=0', () => {
    expect(loadIngestorConfig({ ...minimal, METRICS_PORT: '0' }).metrics).toBeUndefined();
  });

  it.each([
    ['SQS_QUEUE_URL', { ...minimal, SQS_QUEUE_URL: undefined }],
    ['DATABASE_URL', { ...minimal, DATABASE_URL: undefined }],
    ['KMS_KEY_ID', { ...minimal, KMS_KEY_ID: undefined }],
    ['SQS_QUEUE_URL', { ...minimal, SQS_QUEUE_URL: 'not a url' }],
    ['INGESTOR_POLLERS', { ...minimal, INGESTOR_POLLERS: '0' }],
    ['INGESTOR_POLLERS', { ...minimal, INGESTOR_POLLERS: '65' }],
    ['INGESTOR_POLLERS', { ...minimal, INGESTOR_POLLERS_MIN: '5' }],
    ['INGESTOR_POLLERS_MIN', { ...minimal, INGESTOR_POLLERS_MIN: '10', INGESTOR_POLLERS_MAX: '8' }],
    ['INGESTOR_POLLERS_MAX', { ...minimal, INGESTOR_POLLERS_MAX: '257' }],
    ['INGESTOR_MAX_IN_FLIGHT_MESSAGES', { ...minimal, INGESTOR_MAX_IN_FLIGHT_MESSAGES: '5' }],
    ['INGESTOR_MAX_IN_FLIGHT_MIB', { ...minimal, INGESTOR_MAX_IN_FLIGHT_MIB: '0' }],
    ['SQS_WAIT_TIME_SECONDS', { ...minimal, SQS_WAIT_TIME_SECONDS: '21' }],
    ['INGEST_UNKNOWN_FIELDS', { ...minimal, INGEST_UNKNOWN_FIELDS: 'ignore' }],
  ])('names %s when it is missing or invalid', (setting, env) => {
    const error = configError(env);
    expect(error.settings).toContain(setting);
    expect(error.message).toContain(setting);
  });

  it('accepts a local keyring file instead of KMS for development', () => {
    const config = loadIngestorConfig({ ...minimal, KMS_KEY_ID: undefined, LOCAL_MASTER_KEY_FILE: '.data/master.key' });
    expect(config.keyProvider).toEqual({ kind: 'local', file: '.data/master.key' });
  });
});
