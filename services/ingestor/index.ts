/**
 * The ingestor's public face: everything code outside services/ingestor may use (its container
 * entry point main.ts, the local stack, the benchmarks). The rest of this directory is private;
 * eslint.config.js refuses imports that reach past this file.
 *
 * Settings → running ingestor: loadIngestorConfig(env), then startIngestor(config, deps) with a
 * database, keys (lib/runtime) and an SQS client (sqsClientFor(config)).
 */
export { INGESTOR_DEFAULTS, loadIngestorConfig, type IngestorConfig } from './config.js';
export { createIngestorSqsClient } from './sqs-client.js';
export { metricsListenTarget, sqsClientFor, startIngestor, type IngestorRuntimeDeps, type RunningIngestor } from './start.js';
export { createIngestor, type BatchEvent, type Ingestor, type IngestorDeps, type IngestorOptions, type IngestorStats } from './worker.js';

// The stages bench:ingest measures on their own: the transport without storage, the storage path
// without the transport, and the message parser a naive consumer uses as its baseline.
export { SqsPoller, type BatchHandler, type PolledMessage, type SqsPollerOptions } from './sqs-poller.js';
export { createSink, type Sink, type SinkDeps, type SinkResult } from './sink.js';
export { KnownTokens } from './known-tokens.js';
export { parseLoginEvent, type InboundMessage, type LoginEvent } from './message.js';
