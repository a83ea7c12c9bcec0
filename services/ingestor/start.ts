import type { SQSClient, SQSClientConfig } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import type { Database } from '../../db/client.js';
import type { KeyProvider } from '../../lib/keys/key-provider.js';
import type { ListenTarget } from '../../lib/net/listen-errors.js';
import type { IngestorConfig } from './config.js';
import { startHealthServer, type HealthServer } from './http.js';
import { createIngestorSqsClient } from './sqs-client.js';
import { createIngestor, type Ingestor, type IngestorOptions } from './worker.js';

export interface IngestorRuntimeDeps {
  sqs: SQSClient;
  database: Database;
  keys: KeyProvider;
  logger: Logger;
  /** Extra options that are not settings (progress callbacks, test back-off). */
  options?: Pick<IngestorOptions, 'onBatch' | 'backoff'>;
}

export interface RunningIngestor {
  ingestor: Ingestor;
  /** The /metrics, /healthz, /readyz server; undefined when METRICS_PORT=0. */
  health: HealthServer | undefined;
  /** Stops polling (in-flight batches commit and delete first), then the health server. */
  stop(): Promise<void>;
}

/** The SQS client the settings ask for (region, endpoint, sockets for the most receives in flight). */
export function sqsClientFor(config: IngestorConfig, credentials?: SQSClientConfig['credentials']): SQSClient {
  return createIngestorSqsClient({
    region: config.sqs.region,
    endpoint: config.sqs.endpoint,
    maxPollers: config.pollers.max,
    ...(credentials === undefined ? {} : { credentials }),
  });
}

/** The address of the /metrics, /healthz, /readyz server and the settings that choose it, for messages. */
export function metricsListenTarget(config: IngestorConfig): ListenTarget {
  return { setting: 'METRICS_PORT', port: config.metrics?.port ?? 0, host: config.metrics?.host ?? '', hostSetting: 'METRICS_HOST' };
}

/** The worker options a validated config asks for: the one mapping from settings to the ingestor. */
export function ingestorOptions(config: IngestorConfig): IngestorOptions {
  return {
    pollers: config.pollers.initial,
    minPollers: config.pollers.min,
    maxPollers: config.pollers.max,
    maxInFlightMessages: config.inFlight.messages,
    maxInFlightBytes: config.inFlight.bytes,
    waitTimeSeconds: config.sqs.waitTimeSeconds,
    ...(config.sqs.visibilityTimeoutSeconds === undefined ? {} : { visibilityTimeoutSeconds: config.sqs.visibilityTimeoutSeconds }),
    tokenKeyRefreshMs: config.tokenKeyRefreshMs,
    knownTokenCacheSize: config.knownTokenCacheSize,
    unknownFields: config.unknownFields,
    dataKeyPolicy: config.dataKeyPolicy,
  };
}

/**
 * The ingestor as configured: loads the active token key, starts the pollers and the health
 * server. Used by the container entry point (main.ts) and the local stack (local/start.ts),
 * so both run the same thing with the same settings.
 */
export async function startIngestor(config: IngestorConfig, deps: IngestorRuntimeDeps): Promise<RunningIngestor> {
  const ingestor = createIngestor({
    sqs: deps.sqs,
    queueUrl: config.sqs.queueUrl,
    database: deps.database,
    keys: deps.keys,
    logger: deps.logger,
    options: { ...ingestorOptions(config), ...deps.options },
  });
  await ingestor.start();
  let health: HealthServer | undefined;
  try {
    if (config.metrics !== undefined) {
      health = await startHealthServer({ ...config.metrics, registry: ingestor.registry, checkReady: () => ingestor.checkReady() });
      deps.logger.info({ host: config.metrics.host, port: health.port }, 'metrics and health endpoints listening');
    }
  } catch (error) {
    await ingestor.stop();
    throw error;
  }
  return {
    ingestor,
    health,
    async stop() {
      await ingestor.stop();
      await health?.close();
    },
  };
}
