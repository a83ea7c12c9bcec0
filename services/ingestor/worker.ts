import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type QueueAttributeName, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { isTransientDbError, type Database } from '../../db/client.js';
import type { DataKeyPolicy } from '../../lib/config/shared.js';
import { checkReadiness, type Readiness } from '../../lib/health/readiness.js';
import { isTransient } from '../../lib/errors.js';
import { DataKeyRing } from '../../lib/keys/data-key-ring.js';
import type { KeyProvider } from '../../lib/keys/key-provider.js';
import { backoffMs, DEFAULT_BACKOFF, sleep, type BackoffPolicy } from './backoff.js';
import { KnownTokens } from './known-tokens.js';
import type { InboundMessage, UnknownFieldPolicy } from './message.js';
import { countingKeyProvider, createIngestorMetrics, type IngestorMetrics } from './metrics.js';
import { createSink, type Sink, type SinkResult } from './sink.js';
import { ActiveTokenizer } from './token-source.js';

export interface IngestorOptions {
  /** Concurrent long-pollers (each handles one batch at a time). Default 4. */
  pollers?: number;
  /** Long-poll wait, 0..20 s. Default 20. */
  waitTimeSeconds?: number;
  /** Per-receive visibility timeout; default: the queue's own setting. */
  visibilityTimeoutSeconds?: number;
  /** Messages per receive, 1..10. Default 10. */
  maxMessages?: number;
  /** How often the active token key version is re-read. Default 30 000 ms. */
  tokenKeyRefreshMs?: number;
  /** Group-commit transactions in flight at once (see SinkDeps.writers). Default 2. */
  sinkWriters?: number;
  /** Fields a login event does not define: drop them (default) or quarantine the message. */
  unknownFields?: UnknownFieldPolicy;
  /** Capacity of the known-token LRU (0 disables it). Default 100 000. */
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
}


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

const RECEIVE_ATTRIBUTES = ['SentTimestamp', 'ApproximateReceiveCount'] as const;

export function createIngestor(deps: IngestorDeps): Ingestor {
  const options = deps.options ?? {};
  const pollers = options.pollers ?? 4;
  const waitTimeSeconds = options.waitTimeSeconds ?? 20;
  const maxMessages = options.maxMessages ?? 10;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const logger = deps.logger.child({ component: 'ingestor' });
  const metrics = createIngestorMetrics(deps.registry);
  const keys = countingKeyProvider(deps.keys, metrics.kmsCalls);
  const dataKeys = new DataKeyRing(deps.database.db, keys, options.dataKeyPolicy ?? { maxUses: 1_000_000, maxAgeMs: 24 * 3600 * 1000 });
  const tokenizer = new ActiveTokenizer(deps.database.db, keys);
  const knownTokens = new KnownTokens(options.knownTokenCacheSize ?? 100_000);
  const sink = createSink({ database: deps.database, dataKeys, tokenizer: () => tokenizer.current(), knownTokens, logger, writers: options.sinkWriters, unknownFields: options.unknownFields });

  const counts = { received: 0, stored: 0, duplicates: 0, quarantined: 0, retried: 0, deleted: 0, deleteFailures: 0, batches: 0 };
  let inFlight = 0;
  let polling = false;
  let stopping = false;
  let databaseHealthy = false;
  const abort = new AbortController();
  let loops: Promise<void>[] = [];
  let refreshTimer: NodeJS.Timeout | undefined;
  let refreshing: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;

  function toInbound(messages: Message[]): { inbound: InboundMessage[]; handles: string[] } {
    const inbound: InboundMessage[] = [];
    const handles: string[] = [];
    const now = Date.now();
    for (const message of messages) {
      if (message.MessageId === undefined || message.ReceiptHandle === undefined) continue;
      handles.push(message.ReceiptHandle);
      const sent = Number(message.Attributes?.SentTimestamp);
      const receiveCount = Number(message.Attributes?.ApproximateReceiveCount);
      inbound.push({
        messageId: message.MessageId,
        body: message.Body ?? '',
        sentAt: new Date(Number.isFinite(sent) && sent > 0 ? sent : now),
        receiveCount: Number.isInteger(receiveCount) ? receiveCount : undefined,
      });
    }
    return { inbound, handles };
  }

  /** Deletes after commit. Entry ids are indexes: SQS requires them distinct, message ids may repeat. */
  async function deleteMessages(handles: string[], messageIds: string[]): Promise<void> {
    try {
      const out = await deps.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: deps.queueUrl,
          Entries: handles.map((ReceiptHandle, index) => ({ Id: String(index), ReceiptHandle })),
        }),
      );
      const failed = out.Failed?.length ?? 0;
      counts.deleted += handles.length - failed;
      if (failed > 0) {
        counts.deleteFailures += failed;
        metrics.deleteFailures.inc(failed);
        logger.warn({ failed, codes: out.Failed?.map((entry) => entry.Code) }, 'SQS did not delete some committed messages; they will be skipped as duplicates');
      }
    } catch (error) {
      // Committed already: a message that comes back is absorbed by ON CONFLICT (message_id).
      counts.deleteFailures += handles.length;
      metrics.deleteFailures.inc(handles.length);
      logger.warn({ err: errorSummary(error), messageIds }, 'deleting committed messages failed; they will be skipped as duplicates');
    }
  }

  /**
   * Stores a batch. Returns false when it stays on the queue (the poller then backs off);
   * otherwise, once committed, `deleted`: a promise of the rest: DeleteMessageBatch, counters, log,
   * onBatch. The poller does not wait for that before its next receive.
   */
  async function processBatch(messages: Message[]): Promise<false | { deleted: Promise<void> }> {
    const { inbound, handles } = toInbound(messages);
    const messageIds = [...new Set(inbound.map((message) => message.messageId))];
    if (inbound.length === 0) return { deleted: Promise.resolve() };
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
      result = await sink.write(inbound);
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
      return false;
    }
    databaseHealthy = true;
    endTimer();
    // Only after the commit: a message deleted before its row is durable could be lost.
    const deleted = deleteMessages(handles, messageIds)
      .then(() => {
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
      })
      // Nobody awaits this promise at once: a throwing onBatch must not become an unhandled rejection.
      .catch((error: unknown) => logger.error({ err: errorSummary(error), messageIds }, 'after-commit step of a batch failed'))
      .finally(done);
    return { deleted };
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

  async function pollLoop(poller: number): Promise<void> {
    let failures = 0;
    // The previous batch's delete, left running while this poller receives the next batch.
    let deleting: Promise<void> = Promise.resolve();
    try {
      while (!stopping) {
        let messages: Message[];
        try {
          const out = await deps.sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: deps.queueUrl,
              MaxNumberOfMessages: maxMessages,
              WaitTimeSeconds: waitTimeSeconds,
              MessageSystemAttributeNames: [...RECEIVE_ATTRIBUTES],
              // The deprecated spelling too: emulators (local-aws-sqs, older LocalStack) only honour this one.
              AttributeNames: [...RECEIVE_ATTRIBUTES] as unknown as QueueAttributeName[],
              ...(options.visibilityTimeoutSeconds === undefined ? {} : { VisibilityTimeout: options.visibilityTimeoutSeconds }),
            }),
            { abortSignal: abort.signal },
          );
          messages = out.Messages ?? [];
        } catch (error) {
          if (stopping) break;
          failures += 1;
          counts.retried += 1;
          metrics.retried.inc({ cause: 'sqs' });
          logger.warn({ poller, err: errorSummary(error), failures }, 'receiving from SQS failed; backing off');
          await sleep(backoffMs(backoff, failures), abort.signal);
          continue;
        }
        if (messages.length === 0) {
          // Without long polling an empty queue would be polled in a tight loop.
          if (waitTimeSeconds === 0) await sleep(200, abort.signal);
          continue;
        }
        const stored = await processBatch(messages);
        if (stored === false) {
          failures += 1;
          await sleep(backoffMs(backoff, failures), abort.signal);
        } else {
          failures = 0;
          // This batch's delete has started; the poller goes on once the previous one is done
          // (it had a receive and a commit to finish), so at most two are in flight per poller.
          await deleting;
          deleting = stored.deleted;
        }
      }
    } finally {
      // stop() awaits the loops: every committed batch is deleted before it resolves.
      await deleting;
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
      if (isTransientDbError(error)) databaseHealthy = false;
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
      logger.info({ pollers, waitTimeSeconds, tokenKeyVersion: loaded.keyVersion, keys: deps.keys.description }, 'ingestor started');
      loops = Array.from({ length: pollers }, (_, index) => pollLoop(index));
      refreshTimer = setInterval(() => {
        refreshing ??= refreshTokenKey().finally(() => {
          refreshing = undefined;
        });
      }, options.tokenKeyRefreshMs ?? 30_000);
      refreshTimer.unref();
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        // Ends waiting long polls and back-off sleeps; batches being stored finish first.
        abort.abort();
        clearInterval(refreshTimer);
        await Promise.all(loops);
        await refreshing;
        polling = false;
        dataKeys.clear();
        knownTokens.clear();
        logger.info({ ...counts }, 'ingestor stopped');
      })();
      return stopped;
    },
    stats() {
      return { ...counts, inFlight, tokenKeyVersion: tokenizer.loaded ? tokenizer.current().keyVersion : undefined, polling };
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
        polling: async () => (polling && !stopping ? undefined : { ok: false, error: stopping ? 'stopping' : 'not started' }),
      });
    },
  };
}

/**
 * What a log line may say about an error: name, code and message. A raw PostgreSQL error
 * keeps only its SQLSTATE, since its message may quote a value.
 */
function errorSummary(error: unknown): { name: string; code: string; message: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return { name: error.name, code, message: `SQLSTATE ${code}` };
    return { name: error.name, code: typeof code === 'string' ? code : 'error', message: error.message };
  }
  return { name: 'unknown', code: 'error', message: String(error) };
}
