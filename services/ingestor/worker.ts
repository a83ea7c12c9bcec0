import { getHeapStatistics } from 'node:v8';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Database } from '../../db/client.js';
import { DEFAULT_DATA_KEY_POLICY, type DataKeyPolicy } from '../../lib/config/shared.js';
import { errorSummary, isTransient } from '../../lib/errors.js';
import { ActiveTokenKey } from '../../lib/keys/active-token-key.js';
import { checkReadiness, type Readiness } from '../../lib/health/readiness.js';
import { DataKeyRing } from '../../lib/keys/data-key-ring.js';
import type { KeyProvider } from '../../lib/keys/key-provider.js';
import { INGESTOR_DEFAULTS } from './config.js';
import type { BackoffPolicy } from './backoff.js';
import { KnownTokens } from './known-tokens.js';
import type { UnknownFieldPolicy } from './message.js';
import { countingKeyProvider, createIngestorMetrics, type IngestorMetrics } from './metrics.js';
import { createSink, type Sink, type SinkResult } from './sink.js';
import { SqsPoller, type Acknowledgement, type BatchOutcome, type PolledMessage } from './sqs-poller.js';

export interface IngestorOptions {
  /** Receives in flight at start; the limit then follows latency between minPollers and maxPollers. Default: INGESTOR_DEFAULTS. */
  pollers?: number;
  /** Fewest receives kept in flight. Default: INGESTOR_DEFAULTS. */
  minPollers?: number;
  /** Most receives in flight. Default: INGESTOR_DEFAULTS. */
  maxPollers?: number;
  /** Messages received and not yet deleted, at most (receives wait at the bound). Default: INGESTOR_DEFAULTS. */
  maxInFlightMessages?: number;
  /** Bytes of bodies received and not yet deleted, at most. Default: INGESTOR_DEFAULTS. */
  maxInFlightBytes?: number;
  /** Long-poll wait, 0..20 s. Default: INGESTOR_DEFAULTS. */
  waitTimeSeconds?: number;
  /** Per-receive visibility timeout; default: the queue's own setting. */
  visibilityTimeoutSeconds?: number;
  /** Messages per receive, 1..10. Default: INGESTOR_DEFAULTS. */
  batchSize?: number;
  /** How often the active token key version is re-read. Default: INGESTOR_DEFAULTS. */
  tokenKeyRefreshMs?: number;
  /** Group-commit transactions in flight at once (see SinkDeps.writers). Default 2. */
  writers?: number;
  /** Fields a login event does not define: drop them (default) or quarantine the message. */
  unknownFields?: UnknownFieldPolicy;
  /** Capacity of the known-token LRU (0 disables it). Default: INGESTOR_DEFAULTS. */
  knownTokenCacheSize?: number;
  dataKeyPolicy?: DataKeyPolicy;
  backoff?: BackoffPolicy;
  /** Called after every batch (stored, failed or retried): progress for local/start.ts and tests. */
  onBatch?: (event: BatchEvent) => void;
}

export interface IngestorDeps {
  sqs: SQSClient;
  queueUrl: string;
  database: Database;
  keys: KeyProvider;
  logger: Logger;
  options?: IngestorOptions;
  /** A registry to register metrics on; default: a new one per ingestor (never the global default). */
  registry?: Registry;
}

export interface BatchEvent {
  messageIds: string[];
  durationMs: number;
  /** Present when the batch was committed (and its messages deleted). */
  result?: SinkResult;
  /** Present when nothing was deleted; the messages come back after the visibility timeout. */
  error?: { code: string; transient: boolean };
}

export interface IngestorStats {
  received: number;
  stored: number;
  duplicates: number;
  quarantined: number;
  /** Batches left on the queue after a failure (they are retried by redelivery). */
  retried: number;
  deleted: number;
  deleteFailures: number;
  batches: number;
  inFlight: number;
  tokenKeyVersion: number | undefined;
  polling: boolean;
  /** The receive concurrency limit now, and the receives and messages in flight. */
  transport: { limit: number; receiving: number; inFlightMessages: number };
}


/** How long /readyz waits for the database and the queue before calling them unreachable. */
const READINESS_TIMEOUT_MS = 3_000;

export interface Ingestor {
  /** Loads the active token key (creating v1 on a fresh database), then starts the pollers. */
  start(): Promise<void>;
  /** Stops polling, lets in-flight batches commit and delete, then resolves. Idempotent. */
  stop(): Promise<void>;
  stats(): IngestorStats;
  /** Cached readiness: token key loaded, polling, and the database answered last time it was used. */
  ready(): boolean;
  /** Readiness with a fresh database round trip (for /readyz). */
  checkReady(): Promise<Readiness>;
  readonly registry: Registry;
  readonly metrics: IngestorMetrics;
  /** The storage path pollers use (validate, tokenise, encrypt, one transaction). */
  readonly sink: Sink;
}

/**
 * The ingestor: an SqsPoller (the transport) whose batch handler is the sink (validate,
 * tokenise, encrypt, store), plus the token-key refresh timer, metrics and readiness.
 */
export function createIngestor(deps: IngestorDeps): Ingestor {
  const options = deps.options ?? {};
  const pollers = options.pollers ?? INGESTOR_DEFAULTS.pollers;
  const minPollers = options.minPollers ?? Math.min(INGESTOR_DEFAULTS.minPollers, pollers);
  const maxPollers = options.maxPollers ?? Math.max(INGESTOR_DEFAULTS.maxPollers, pollers);
  const waitTimeSeconds = options.waitTimeSeconds ?? INGESTOR_DEFAULTS.waitTimeSeconds;
  const logger = deps.logger.child({ component: 'ingestor' });
  // First: options SQS would reject stop construction here, before anything else is built.
  const poller = new SqsPoller({
    sqs: deps.sqs,
    options: {
      queueUrl: deps.queueUrl,
      batchSize: options.batchSize ?? INGESTOR_DEFAULTS.batchSize,
      waitTimeSeconds,
      pollers,
      minPollers,
      maxPollers,
      maxInFlightMessages: options.maxInFlightMessages ?? INGESTOR_DEFAULTS.maxInFlightMessages,
      maxInFlightBytes: options.maxInFlightBytes ?? INGESTOR_DEFAULTS.maxInFlightMiB * 1024 * 1024,
      ...(options.visibilityTimeoutSeconds === undefined ? {} : { visibilityTimeoutSeconds: options.visibilityTimeoutSeconds }),
      ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
    },
    handleBatch: storeBatch,
    memoryPressure: heapShort,
    events: {
      onReceiveError({ error, failures }) {
        counts.retried += 1;
        metrics.retried.inc({ cause: 'sqs' });
        logger.warn({ err: errorSummary(error), failures }, 'receiving from SQS failed; backing off');
      },
      onHandlerError({ error, messageIds }) {
        // storeBatch logs its own failures; this is only reached by an unexpected throw.
        if (error instanceof BatchNotStored) return;
        logger.error({ err: errorSummary(error), messageIds }, 'after-commit step of a batch failed');
      },
      onReceive({ durationMs }) {
        metrics.receiveSeconds.observe(durationMs / 1000);
      },
      onDelete({ durationMs, entries, failed, error }) {
        metrics.deleteSeconds.observe(durationMs / 1000);
        if (failed === 0) return;
        // Committed already: a message SQS did not delete comes back and is absorbed by the key (message_id).
        metrics.deleteFailures.inc(failed);
        if (error !== undefined) logger.warn({ err: errorSummary(error), entries, failed }, 'deleting committed messages failed; they will come back and be skipped as duplicates');
        else logger.warn({ entries, failed }, 'SQS did not delete some committed messages; they will come back and be skipped as duplicates');
      },
      onLimitChange({ limit, previous, reason }) {
        metrics.limitChanges.inc({ reason });
        logger.debug({ limit, previous, reason }, 'receive concurrency changed');
      },
    },
  });

  const metrics = createIngestorMetrics(deps.registry, () => poller.stats());
  const keys = countingKeyProvider(deps.keys, metrics.kmsCalls);
  const dataKeys = new DataKeyRing(deps.database.db, keys, options.dataKeyPolicy ?? DEFAULT_DATA_KEY_POLICY);
  const tokenizer = new ActiveTokenKey(deps.database, keys);
  const knownTokens = new KnownTokens(options.knownTokenCacheSize ?? INGESTOR_DEFAULTS.knownTokenCacheSize);
  const sink = createSink({ database: deps.database, dataKeys, tokenizer: () => tokenizer.current(), knownTokens, logger, writers: options.writers, unknownFields: options.unknownFields });

  const counts = { received: 0, stored: 0, duplicates: 0, quarantined: 0, retried: 0, deleted: 0, deleteFailures: 0, batches: 0 };
  let inFlight = 0;
  let polling = false;
  let stopping = false;
  let databaseHealthy = false;
  let refreshTimer: NodeJS.Timeout | undefined;
  let refreshing: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;

  /**
   * The poller's handler: stores a batch in one transaction; the poller deletes it only once
   * this resolves. On failure it throws: nothing is deleted, the messages come back after the
   * visibility timeout and the poller backs off. Counters, the log line and onBatch follow the
   * delete (onAcknowledged), which the poller does not wait for before its next receive.
   */
  async function storeBatch(messages: PolledMessage[]): Promise<BatchOutcome> {
    const messageIds = [...new Set(messages.map((message) => message.messageId))];
    inFlight += 1;
    metrics.inFlight.inc();
    const started = performance.now();
    const endTimer = metrics.batchSeconds.startTimer();
    const done = () => {
      inFlight -= 1;
      metrics.inFlight.dec();
    };
    let result: SinkResult;
    try {
      result = await sink.write(messages);
    } catch (error) {
      done();
      const transient = isTransient(error);
      if (transient) databaseHealthy = false;
      counts.retried += 1;
      metrics.retried.inc({ cause: transient ? 'transient' : 'error' });
      const summary = errorSummary(error);
      const log = transient ? logger.warn.bind(logger) : logger.error.bind(logger);
      log({ err: summary, messageIds }, 'batch not stored; messages stay on the queue and come back after the visibility timeout');
      options.onBatch?.({ messageIds, durationMs: performance.now() - started, error: { code: summary.code, transient } });
      throw new BatchNotStored(error);
    }
    databaseHealthy = true;
    endTimer();
    return {
      // Every message of a committed batch: stored, quarantined or a duplicate.
      succeeded: messageIds,
      onAcknowledged(ack) {
        try {
          recordDelete(ack);
          record(result);
          logger.info(
            {
              messageIds,
              received: result.received,
              stored: result.stored,
              duplicates: result.duplicates,
              quarantined: result.quarantined,
              reasons: result.reasons,
              droppedFields: result.droppedFields,
              vaultWritten: result.vaultWritten,
              splitAfterError: result.splitAfterError,
            },
            'batch stored',
          );
          options.onBatch?.({ messageIds, durationMs: performance.now() - started, result });
        } catch (error) {
          logger.error({ err: errorSummary(error), messageIds }, 'after-commit step of a batch failed');
        } finally {
          done();
        }
      },
    };
  }

  /** Counted for stats(); the failed calls themselves are logged and counted in onDelete. */
  function recordDelete(ack: Acknowledgement): void {
    counts.deleted += ack.deleted;
    counts.deleteFailures += ack.failed;
  }

  function record(result: SinkResult): void {
    counts.batches += 1;
    counts.received += result.received;
    counts.stored += result.stored;
    counts.duplicates += result.duplicates;
    counts.quarantined += result.quarantined;
    metrics.received.inc(result.received);
    metrics.stored.inc(result.stored);
    metrics.duplicates.inc(result.duplicates);
    for (const [reason, count] of Object.entries(result.reasons)) metrics.quarantined.inc({ reason }, count);
    for (const [name, count] of Object.entries(result.droppedFields)) {
      const { label, first } = metrics.unknownFieldNames.admit(name);
      metrics.unknownFields.inc({ field: label }, count);
      // Once per name per process: a producer adding a field is news, not a per-message event.
      if (first) logger.warn({ field: label }, 'login events carry a field the ingestor does not know; stored without it (INGEST_UNKNOWN_FIELDS=drop)');
    }
  }

  async function refreshTokenKey(): Promise<void> {
    try {
      const switched = await tokenizer.refresh();
      databaseHealthy = true;
      if (switched !== undefined) {
        // Tokens of the old version are never produced again: drop them.
        knownTokens.clear();
        logger.info({ tokenKeyVersion: switched }, 'active token key changed; switched');
      }
    } catch (error) {
      if (isTransient(error)) databaseHealthy = false;
      logger.warn({ err: errorSummary(error) }, 'checking the active token key failed; keeping the current one');
    }
  }

  return {
    registry: metrics.registry,
    metrics,
    sink,
    async start() {
      if (polling || stopping) return;
      const loaded = await tokenizer.load();
      databaseHealthy = true;
      polling = true;
      logger.info({ pollers, minPollers, maxPollers, waitTimeSeconds, tokenKeyVersion: loaded.keyVersion, keys: deps.keys.description }, 'ingestor started');
      poller.start();
      refreshTimer = setInterval(() => {
        refreshing ??= refreshTokenKey().finally(() => {
          refreshing = undefined;
        });
      }, options.tokenKeyRefreshMs ?? INGESTOR_DEFAULTS.tokenKeyRefreshSeconds * 1000);
      refreshTimer.unref();
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        clearInterval(refreshTimer);
        // Ends waiting long polls and back-off sleeps; batches being stored commit and delete first.
        await poller.stop();
        await refreshing;
        polling = false;
        dataKeys.clear();
        knownTokens.clear();
        logger.info({ ...counts }, 'ingestor stopped');
      })();
      return stopped;
    },
    stats() {
      const { limit, receiving, inFlightMessages } = poller.stats();
      return {
        ...counts,
        inFlight,
        tokenKeyVersion: tokenizer.loaded ? tokenizer.current().keyVersion : undefined,
        polling,
        transport: { limit, receiving, inFlightMessages },
      };
    },
    ready() {
      return polling && !stopping && tokenizer.loaded && databaseHealthy;
    },
    async checkReady() {
      return checkReadiness({
        database: () =>
          deps.database.pool.query('SELECT 1').then(
            () => {
              databaseHealthy = true;
            },
            (error: unknown) => {
              databaseHealthy = false;
              throw error;
            },
          ),
        tokenKey: async () => (tokenizer.loaded ? `v${tokenizer.current().keyVersion}` : { ok: false, error: 'not loaded yet' }),
        // Long polls may be in back-off for a while: ask the queue itself, now.
        queue: () => poller.checkQueue(READINESS_TIMEOUT_MS),
        polling: async () => (polling && !stopping ? undefined : { ok: false, error: stopping ? 'stopping' : 'not started' }),
      });
    },
  };
}

/** The V8 heap is above this share of its limit: the poller lowers its concurrency. */
const HEAP_PRESSURE = 0.85;

function heapShort(): boolean {
  const heap = getHeapStatistics();
  return heap.used_heap_size > heap.heap_size_limit * HEAP_PRESSURE;
}

/** The sink refused a batch (logged and counted by the handler): the poller leaves it on the queue. */
class BatchNotStored extends Error {
  constructor(cause: unknown) {
    super('batch not stored', { cause });
    this.name = 'BatchNotStored';
  }
}
