import { z } from 'zod';
import { envInt, envUrl, parseEnv, type Env } from '../../lib/config/env.js';
import { UNKNOWN_FIELD_POLICIES, type UnknownFieldPolicy } from './message.js';
import { MAX_POLLERS } from './sqs-poller.js';
import { keyProviderRefinement, sharedConfig, sharedEnvSchema, type SharedConfig } from '../../lib/config/shared.js';

/** Every ingestor default, once: the env schema and createIngestor (tests, benchmarks) both use these. */
export const INGESTOR_DEFAULTS = {
  /** Receives in flight at start; the limit then follows latency (services/ingestor/concurrency-limit.ts). */
  pollers: 4,
  minPollers: 1,
  /** Enough for ~20,000 msg/s at a 30 ms round trip (Little's law: 64 × 10 messages / 0.03 s). */
  maxPollers: 64,
  /** Messages received and not yet deleted, at most: bounds memory and what waits for the database. */
  maxInFlightMessages: 5_000,
  maxInFlightMiB: 32,
  waitTimeSeconds: 20,
  /** Messages per receive (the SQS maximum). */
  batchSize: 10,
  tokenKeyRefreshSeconds: 30,
  knownTokenCacheSize: 100_000,
} as const;

export const ingestorEnvSchema = sharedEnvSchema
  .extend({
    SQS_QUEUE_URL: envUrl,
    /** SQS-specific endpoint (LocalStack, emulator); falls back to AWS_ENDPOINT_URL, then to AWS itself. */
    AWS_ENDPOINT_URL_SQS: envUrl.optional(),
    INGESTOR_POLLERS: envInt(1, MAX_POLLERS).default(INGESTOR_DEFAULTS.pollers),
    INGESTOR_POLLERS_MIN: envInt(1, MAX_POLLERS).default(INGESTOR_DEFAULTS.minPollers),
    INGESTOR_POLLERS_MAX: envInt(1, MAX_POLLERS).default(INGESTOR_DEFAULTS.maxPollers),
    INGESTOR_MAX_IN_FLIGHT_MESSAGES: envInt(10, 1_000_000).default(INGESTOR_DEFAULTS.maxInFlightMessages),
    INGESTOR_MAX_IN_FLIGHT_MIB: envInt(1, 65_536).default(INGESTOR_DEFAULTS.maxInFlightMiB),
    SQS_WAIT_TIME_SECONDS: envInt(0, 20).default(INGESTOR_DEFAULTS.waitTimeSeconds),
    /** Overrides the queue's visibility timeout per receive; unset keeps the queue's setting. */
    SQS_VISIBILITY_TIMEOUT_SECONDS: envInt(0, 43_200).optional(),
    TOKEN_KEY_REFRESH_SECONDS: envInt(1, 3600).default(INGESTOR_DEFAULTS.tokenKeyRefreshSeconds),
    KNOWN_TOKEN_CACHE_SIZE: envInt(0, 10_000_000).default(INGESTOR_DEFAULTS.knownTokenCacheSize),
    /** drop: store events without fields they do not define (additive producer changes); quarantine: strict. */
    INGEST_UNKNOWN_FIELDS: z.enum(UNKNOWN_FIELD_POLICIES).default('drop'),
    METRICS_PORT: envInt(0, 65_535).default(9464),
    METRICS_HOST: z.string().min(1).default('127.0.0.1'),
    SHUTDOWN_TIMEOUT_SECONDS: envInt(1, 3600).default(30),
  })
  .superRefine(keyProviderRefinement)
  .superRefine((env, ctx) => {
    if (env.INGESTOR_POLLERS_MIN > env.INGESTOR_POLLERS_MAX) {
      ctx.addIssue({ code: 'custom', path: ['INGESTOR_POLLERS_MIN'], message: `must not be above INGESTOR_POLLERS_MAX (${env.INGESTOR_POLLERS_MAX})` });
    } else if (env.INGESTOR_POLLERS < env.INGESTOR_POLLERS_MIN || env.INGESTOR_POLLERS > env.INGESTOR_POLLERS_MAX) {
      ctx.addIssue({
        code: 'custom',
        path: ['INGESTOR_POLLERS'],
        message: `the receives in flight at start must be within INGESTOR_POLLERS_MIN..INGESTOR_POLLERS_MAX (${env.INGESTOR_POLLERS_MIN}..${env.INGESTOR_POLLERS_MAX})`,
      });
    }
  });

export interface IngestorConfig extends SharedConfig {
  sqs: {
    queueUrl: string;
    region: string;
    endpoint: string | undefined;
    waitTimeSeconds: number;
    visibilityTimeoutSeconds: number | undefined;
  };
  /** Receives in flight: at start, and the bounds the concurrency limit moves within. */
  pollers: { initial: number; min: number; max: number };
  /** Messages and body bytes received and not yet deleted, at most. */
  inFlight: { messages: number; bytes: number };
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
    pollers: { initial: parsed.INGESTOR_POLLERS, min: parsed.INGESTOR_POLLERS_MIN, max: parsed.INGESTOR_POLLERS_MAX },
    inFlight: { messages: parsed.INGESTOR_MAX_IN_FLIGHT_MESSAGES, bytes: parsed.INGESTOR_MAX_IN_FLIGHT_MIB * 1024 * 1024 },
    tokenKeyRefreshMs: parsed.TOKEN_KEY_REFRESH_SECONDS * 1000,
    knownTokenCacheSize: parsed.KNOWN_TOKEN_CACHE_SIZE,
    unknownFields: parsed.INGEST_UNKNOWN_FIELDS,
    metrics: parsed.METRICS_PORT === 0 ? undefined : { host: parsed.METRICS_HOST, port: parsed.METRICS_PORT },
    shutdownTimeoutMs: parsed.SHUTDOWN_TIMEOUT_SECONDS * 1000,
  };
}
