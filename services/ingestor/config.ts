import { z } from 'zod';
import { envInt, envUrl, parseEnv, type Env } from '../../lib/config/env.js';
import { UNKNOWN_FIELD_POLICIES, type UnknownFieldPolicy } from './message.js';
import { keyProviderRefinement, sharedConfig, sharedEnvSchema, type SharedConfig } from '../../lib/config/shared.js';

export const ingestorEnvSchema = sharedEnvSchema
  .extend({
    SQS_QUEUE_URL: envUrl,
    /** SQS-specific endpoint (LocalStack, emulator); falls back to AWS_ENDPOINT_URL, then to AWS itself. */
    AWS_ENDPOINT_URL_SQS: envUrl.optional(),
    INGESTOR_POLLERS: envInt(1, 64).default(4),
    SQS_WAIT_TIME_SECONDS: envInt(0, 20).default(20),
    /** Overrides the queue's visibility timeout per receive; unset keeps the queue's setting. */
    SQS_VISIBILITY_TIMEOUT_SECONDS: envInt(0, 43_200).optional(),
    TOKEN_KEY_REFRESH_SECONDS: envInt(1, 3600).default(30),
    KNOWN_TOKEN_CACHE_SIZE: envInt(0, 10_000_000).default(100_000),
    /** drop: store events without fields they do not define (additive producer changes); quarantine: strict. */
    INGEST_UNKNOWN_FIELDS: z.enum(UNKNOWN_FIELD_POLICIES).default('drop'),
    METRICS_PORT: envInt(0, 65_535).default(9464),
    METRICS_HOST: z.string().min(1).default('127.0.0.1'),
    SHUTDOWN_TIMEOUT_SECONDS: envInt(1, 3600).default(30),
  })
  .superRefine(keyProviderRefinement);

export interface IngestorConfig extends SharedConfig {
  sqs: {
    queueUrl: string;
    region: string;
    endpoint: string | undefined;
    waitTimeSeconds: number;
    visibilityTimeoutSeconds: number | undefined;
  };
  pollers: number;
  tokenKeyRefreshMs: number;
  knownTokenCacheSize: number;
  unknownFields: UnknownFieldPolicy;
  /** undefined when METRICS_PORT=0 (no HTTP server). */
  metrics: { host: string; port: number } | undefined;
  shutdownTimeoutMs: number;
}

/** Validates the ingestor's settings once; throws ConfigError naming every wrong setting. */
export function loadIngestorConfig(env: Env): IngestorConfig {
  const parsed = parseEnv(ingestorEnvSchema, env);
  return {
    ...sharedConfig(parsed),
    sqs: {
      queueUrl: parsed.SQS_QUEUE_URL,
      region: parsed.AWS_REGION,
      endpoint: parsed.AWS_ENDPOINT_URL_SQS ?? parsed.AWS_ENDPOINT_URL,
      waitTimeSeconds: parsed.SQS_WAIT_TIME_SECONDS,
      visibilityTimeoutSeconds: parsed.SQS_VISIBILITY_TIMEOUT_SECONDS,
    },
    pollers: parsed.INGESTOR_POLLERS,
    tokenKeyRefreshMs: parsed.TOKEN_KEY_REFRESH_SECONDS * 1000,
    knownTokenCacheSize: parsed.KNOWN_TOKEN_CACHE_SIZE,
    unknownFields: parsed.INGEST_UNKNOWN_FIELDS,
    metrics: parsed.METRICS_PORT === 0 ? undefined : { host: parsed.METRICS_HOST, port: parsed.METRICS_PORT },
    shutdownTimeoutMs: parsed.SHUTDOWN_TIMEOUT_SECONDS * 1000,
  };
}
