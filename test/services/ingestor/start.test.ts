import { describe, expect, it } from 'vitest';
import { loadIngestorConfig } from '../../../services/ingestor/config.js';
import { ingestorOptions } from '../../../services/ingestor/start.js';

const BASE = {
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/tokenvault',
  SQS_QUEUE_URL: 'http://localhost:4566/000000000000/login-queue',
  LOCAL_MASTER_KEY_FILE: '/tmp/master.key',
};

describe('ingestorOptions', () => {
  it('passes every setting of the config to the worker, the per-receive visibility timeout included', () => {
    const config = loadIngestorConfig({
      ...BASE,
      INGESTOR_POLLERS: '3',
      INGESTOR_POLLERS_MIN: '2',
      INGESTOR_POLLERS_MAX: '40',
      INGESTOR_MAX_IN_FLIGHT_MESSAGES: '800',
      INGESTOR_MAX_IN_FLIGHT_MIB: '16',
      SQS_WAIT_TIME_SECONDS: '5',
      SQS_VISIBILITY_TIMEOUT_SECONDS: '45',
      TOKEN_KEY_REFRESH_SECONDS: '7',
      KNOWN_TOKEN_CACHE_SIZE: '123',
      DATA_KEY_MAX_USES: '99',
      DATA_KEY_MAX_AGE_SECONDS: '60',
    });
    expect(ingestorOptions(config)).toEqual({
      pollers: 3,
      minPollers: 2,
      maxPollers: 40,
      maxInFlightMessages: 800,
      maxInFlightBytes: 16 * 1024 * 1024,
      waitTimeSeconds: 5,
      visibilityTimeoutSeconds: 45,
      tokenKeyRefreshMs: 7000,
      knownTokenCacheSize: 123,
      unknownFields: 'drop',
      dataKeyPolicy: { maxUses: 99, maxAgeMs: 60_000 },
    });
  });

  it('leaves the visibility timeout to the queue when it is not set', () => {
    expect(ingestorOptions(loadIngestorConfig(BASE))).not.toHaveProperty('visibilityTimeoutSeconds');
  });
});
