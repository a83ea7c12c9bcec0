import { setMaxListeners } from 'node:events';
import { GetQueueAttributesCommand, ReceiveMessageCommand, type Message, type QueueAttributeName, type SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { backoffMs, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { ConcurrencyLimit, type LimitChange } from './concurrency-limit.js';
import { SqsDeleter, type Acknowledgement, type DeleteCall } from './sqs-deleter.js';

export type { Acknowledgement } from './sqs-deleter.js';
export type { LimitChange } from './concurrency-limit.js';

/**
 * The SQS transport, and nothing else: long-polls a queue with as many receives in flight as
 * the latency needs (ConcurrencyLimit: grows while a backlog waits and throughput keeps up,
 * shrinks on failures, memory pressure or an empty queue, within [minPollers, maxPollers]),
 * hands each received batch to `handleBatch` at once (receives do not wait for it), deletes
 * exactly the messages the handler reports as succeeded (SqsDeleter: DeleteMessageBatch,
 * pooled across batches, off the receive path) and leaves the rest to come back after the
 * visibility timeout. Messages received and not yet deleted are bounded (count and bytes):
 * at the bound, receives wait. It knows nothing of what the messages mean (no database, no
 * keys): the caller composes it with its own handler.
 */

/** One received message, SQS attributes already read. */
export interface PolledMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  /** SQS SentTimestamp; the receive time when SQS did not report it. */
  sentAt: Date;
  /** SQS ApproximateReceiveCount (1 on the first delivery); undefined when not reported. */
  receiveCount: number | undefined;
}

export interface BatchOutcome {
  /** Message ids to delete; every other message of the batch stays on the queue. */
  succeeded: Iterable<string>;
  /**
   * Called once the delete has finished (or at once when nothing is to be deleted). The poller
   * receives its next batches without waiting for this, but stop() does wait for it.
   */
  onAcknowledged?: (ack: Acknowledgement) => void;
}

/**
 * Handles one batch. Resolve with the ids that may be deleted; throw when none may (the poller
 * then pauses its receives, backing off, and lowers its concurrency).
 */
export type BatchHandler = (messages: PolledMessage[]) => Promise<BatchOutcome>;

/** Observability hooks: the poller logs nothing itself. */
export interface SqsPollerEvents {
  /** A receive failed; receives pause `delayMs` before trying again. */
  onReceiveError?: (event: { error: unknown; failures: number; delayMs: number }) => void;
  /** The handler threw (or its onAcknowledged did): nothing of the batch was deleted by that failure. */
  onHandlerError?: (event: { error: unknown; messageIds: string[] }) => void;
  /** A receive answered (round trip, long-poll wait included). */
  onReceive?: (event: { durationMs: number; messages: number }) => void;
  /** A DeleteMessageBatch call finished (or failed). */
  onDelete?: (event: DeleteCall) => void;
  /** The concurrency limit changed. */
  onLimitChange?: (change: LimitChange) => void;
}

/** An integer option in [min, max], with one message for a wrong type and a wrong value alike. */
const integer = (min: number, max: number) => {
  const error = `must be an integer from ${min} to ${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};

export const MAX_POLLERS = 256;

const optionsSchema = z
  .object({
    queueUrl: z.url({ error: 'must be the queue URL' }),
    /** Messages per receive: 1..10 (the SQS limit). */
    batchSize: integer(1, 10),
    /** Long-poll wait: 0..20 s (the SQS limit). 0 = short polling (the poller then pauses between empty receives). */
    waitTimeSeconds: integer(0, 20),
    /** Per-receive visibility timeout, 0..43200 s; undefined keeps the queue's own setting. */
    visibilityTimeoutSeconds: integer(0, 43_200).optional(),
    /** Receives in flight at start; the limit then moves between minPollers and maxPollers. */
    pollers: integer(1, MAX_POLLERS),
    /** Fewest receives kept in flight (default 1). */
    minPollers: integer(1, MAX_POLLERS).optional(),
    /** Most receives in flight (default max(pollers, 64)). */
    maxPollers: integer(1, MAX_POLLERS).optional(),
    /** Messages received and not yet deleted (or given back), at most; receives wait at the bound. */
    maxInFlightMessages: integer(10, 1_000_000).optional(),
    /** Bytes of message bodies received and not yet deleted, at most. */
    maxInFlightBytes: integer(262_144, 2 ** 40).optional(),
    /** Back-off after a failed receive or a batch the handler failed; default DEFAULT_BACKOFF. */
    backoff: z
      .object({
        baseMs: z.number({ error: 'must be a positive number of milliseconds' }).finite().positive({ error: 'must be a positive number of milliseconds' }),
        maxMs: z.number({ error: 'must be a positive number of milliseconds' }).finite().positive({ error: 'must be a positive number of milliseconds' }),
      })
      .refine((policy) => policy.maxMs >= policy.baseMs, { error: 'maxMs must not be below baseMs', path: ['maxMs'] })
      .optional(),
    /** Pause after an empty receive when waitTimeSeconds is 0 (no long poll to wait in). */
    idlePauseMs: integer(0, 60_000).optional(),
  })
  .refine((options) => (options.minPollers ?? 1) <= options.pollers, { error: 'must not be above pollers', path: ['minPollers'] })
  .refine((options) => options.maxPollers === undefined || options.maxPollers >= options.pollers, { error: 'must not be below pollers', path: ['maxPollers'] });

export type SqsPollerOptions = z.input<typeof optionsSchema>;

/** Constructing a poller with an option out of range: names the option. */
export class SqsPollerOptionsError extends Error {
  constructor(
    readonly option: string,
    problem: string,
  ) {
    super(`SqsPoller option ${option}: ${problem}`);
    this.name = 'SqsPollerOptionsError';
  }
}

/** Validates once, at construction: a poller never starts with a limit SQS would reject at runtime. */
function validate(options: SqsPollerOptions): z.output<typeof optionsSchema> {
  const parsed = optionsSchema.safeParse(options);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const option = issue?.path.join('.') || 'options';
  const received = issue?.path.reduce<unknown>((value, key) => (value as Record<PropertyKey, unknown> | undefined)?.[key], options);
  throw new SqsPollerOptionsError(option, `${issue?.message ?? 'invalid'} (got ${JSON.stringify(received) ?? String(received)})`);
}

// SentTimestamp for the message's time, ApproximateReceiveCount for redelivery diagnostics.
const RECEIVE_ATTRIBUTES = ['SentTimestamp', 'ApproximateReceiveCount'] as const;
const DEFAULT_IDLE_PAUSE_MS = 200;
export const DEFAULT_MAX_POLLERS = 64;
export const DEFAULT_MAX_IN_FLIGHT_MESSAGES = 5_000;
export const DEFAULT_MAX_IN_FLIGHT_BYTES = 32 * 1024 * 1024;

export type SqsPollerState = 'idle' | 'polling' | 'stopping' | 'stopped';

export interface SqsPollerStats {
  /** The concurrency limit: receives allowed in flight. */
  limit: number;
  /** Receives in flight now. */
  receiving: number;
  /** Batches in the handler now. */
  handling: number;
  /** Messages received and not yet deleted (or given back to the queue). */
  inFlightMessages: number;
  inFlightBytes: number;
}

export interface SqsPollerDeps {
  sqs: SQSClient;
  options: SqsPollerOptions;
  handleBatch: BatchHandler;
  events?: SqsPollerEvents;
  /** Asked once per window of receives: true when memory is short (the limit then shrinks). */
  memoryPressure?: () => boolean;
}

export class SqsPoller {
  readonly queueUrl: string;
  private readonly options: z.output<typeof optionsSchema>;
  private readonly backoff: BackoffPolicy;
  private readonly limit: ConcurrencyLimit;
  private readonly deleter: SqsDeleter;
  private readonly maxInFlightMessages: number;
  private readonly maxInFlightBytes: number;
  private readonly abort = new AbortController();
  /** Receives and handled batches (handler, delete, acknowledgement) not finished yet. */
  private readonly work = new Set<Promise<void>>();
  private stopped: Promise<void> | undefined;
  private current: SqsPollerState = 'idle';
  private receiving = 0;
  private handling = 0;
  private inFlightMessages = 0;
  private inFlightBytes = 0;
  /** Consecutive failures (receive or handler); reset by a batch the handler stored. */
  private failures = 0;
  /** No receive starts before this (back-off after a failure, pause after an empty short poll). */
  private pausedUntil = 0;
  /** When the current back-off began: a receive started before it that fails is the same outage. */
  private failedAt = Number.NEGATIVE_INFINITY;
  private pauseTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: SqsPollerDeps) {
    this.options = validate(deps.options);
    this.queueUrl = this.options.queueUrl;
    this.backoff = this.options.backoff ?? DEFAULT_BACKOFF;
    const min = this.options.minPollers ?? 1;
    const max = this.options.maxPollers ?? Math.max(this.options.pollers, DEFAULT_MAX_POLLERS);
    this.limit = new ConcurrencyLimit({ min, max, initial: this.options.pollers });
    this.maxInFlightMessages = Math.max(this.options.maxInFlightMessages ?? DEFAULT_MAX_IN_FLIGHT_MESSAGES, this.options.batchSize);
    this.maxInFlightBytes = this.options.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES;
    this.deleter = new SqsDeleter(deps.sqs, this.queueUrl, deps.events?.onDelete);
    // Every receive in flight listens on the one abort signal (stop() ends them all).
    setMaxListeners(max + 8, this.abort.signal);
  }

  get state(): SqsPollerState {
    return this.current;
  }

  stats(): SqsPollerStats {
    return {
      limit: this.limit.value,
      receiving: this.receiving,
      handling: this.handling,
      inFlightMessages: this.inFlightMessages,
      inFlightBytes: this.inFlightBytes,
    };
  }

  /** Starts receiving. Idempotent; a stopped poller does not start again. */
  start(): void {
    if (this.current !== 'idle') return;
    this.current = 'polling';
    this.pump();
  }

  /**
   * Stops receiving (waiting long polls and back-off pauses end at once), lets every batch in
   * the handler finish and its delete complete, then resolves. Idempotent.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.current = 'stopping';
      this.abort.abort();
      clearTimeout(this.pauseTimer);
      while (this.work.size > 0) await Promise.all(this.work);
      await this.deleter.idle();
      this.current = 'stopped';
    })();
    return this.stopped;
  }

  /** Asks the queue itself (GetQueueAttributes), now: receives may be paused for a while. */
  async checkQueue(timeoutMs: number): Promise<void> {
    await this.deps.sqs.send(new GetQueueAttributesCommand({ QueueUrl: this.queueUrl, AttributeNames: ['QueueArn'] }), {
      abortSignal: AbortSignal.timeout(timeoutMs),
    });
  }

  private get polling(): boolean {
    return this.current === 'polling';
  }

  /** Starts receives while the limit, the in-flight bounds and any pause allow. */
  private pump(): void {
    while (this.polling && this.receiving < this.limit.value) {
      const now = Date.now();
      if (now < this.pausedUntil) {
        this.wakeAt(this.pausedUntil);
        return;
      }
      // Room for a full batch, or the handler and the deletes first drain what is held.
      if (this.inFlightMessages + this.options.batchSize > this.maxInFlightMessages || this.inFlightBytes >= this.maxInFlightBytes) return;
      this.receiving += 1;
      this.limit.started(this.receiving);
      this.track(this.receiveOnce());
    }
  }

  private wakeAt(time: number): void {
    if (this.pauseTimer !== undefined) return;
    this.pauseTimer = setTimeout(() => {
      this.pauseTimer = undefined;
      this.pump();
    }, Math.max(0, time - Date.now()));
  }

  private track(promise: Promise<void>): void {
    const tracked = promise.finally(() => this.work.delete(tracked));
    this.work.add(tracked);
  }

  private async receiveOnce(): Promise<void> {
    const startedAt = Date.now();
    let received: Message[];
    try {
      received = await this.receive();
    } catch (error) {
      this.receiving -= 1;
      if (this.polling) this.receiveFailed(error, startedAt);
      return;
    }
    this.receiving -= 1;
    const durationMs = Date.now() - startedAt;
    this.deps.events?.onReceive?.({ durationMs, messages: received.length });
    this.changed(this.limit.completed(received.length, received.length >= this.options.batchSize, durationMs, () => this.deps.memoryPressure?.() === true));
    const messages = toPolled(received);
    if (messages.length > 0) this.track(this.handle(messages));
    // Without long polling an empty queue would be polled in a tight loop.
    else if (this.options.waitTimeSeconds === 0) this.pausedUntil = Math.max(this.pausedUntil, Date.now() + (this.options.idlePauseMs ?? DEFAULT_IDLE_PAUSE_MS));
    this.pump();
  }

  private receiveFailed(error: unknown, startedAt: number): void {
    // Every receive in flight fails together in an outage: one failure, one pause.
    let delayMs = Math.max(0, this.pausedUntil - Date.now());
    if (startedAt >= this.failedAt) {
      this.failures += 1;
      this.failedAt = Date.now();
      delayMs = backoffMs(this.backoff, this.failures);
      this.pausedUntil = Math.max(this.pausedUntil, this.failedAt + delayMs);
      this.changed(this.limit.pushback('receive_error'));
    }
    this.deps.events?.onReceiveError?.({ error, failures: this.failures, delayMs });
    this.pump();
  }

  private async receive(): Promise<Message[]> {
    const out = await this.deps.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: this.options.batchSize,
        WaitTimeSeconds: this.options.waitTimeSeconds,
        MessageSystemAttributeNames: [...RECEIVE_ATTRIBUTES],
        // The deprecated spelling too: emulators (local-aws-sqs, older LocalStack) only honour this one.
        AttributeNames: [...RECEIVE_ATTRIBUTES] as unknown as QueueAttributeName[],
        ...(this.options.visibilityTimeoutSeconds === undefined ? {} : { VisibilityTimeout: this.options.visibilityTimeoutSeconds }),
      }),
      { abortSignal: this.abort.signal },
    );
    return out.Messages ?? [];
  }

  /** Runs the handler, deletes what it vouches for, reports the acknowledgement; never rejects. */
  private async handle(messages: PolledMessage[]): Promise<void> {
    const messageIds = [...new Set(messages.map((message) => message.messageId))];
    let held = messages.length;
    let heldBytes = messages.reduce((sum, message) => sum + message.body.length, 0);
    this.inFlightMessages += held;
    this.inFlightBytes += heldBytes;
    const release = (count: number, bytes: number) => {
      this.inFlightMessages -= count;
      this.inFlightBytes -= bytes;
      held -= count;
      heldBytes -= bytes;
      this.pump();
    };
    this.handling += 1;
    let outcome: BatchOutcome;
    try {
      outcome = await this.deps.handleBatch(messages);
    } catch (error) {
      this.handling -= 1;
      this.deps.events?.onHandlerError?.({ error, messageIds });
      this.handlerFailed();
      release(held, heldBytes);
      return;
    }
    this.handling -= 1;
    this.failures = 0;
    // Only what the handler vouches for: a message deleted before it is safe would be lost.
    const succeeded = new Set(outcome.succeeded);
    const deleting = messages.filter((message) => succeeded.has(message.messageId));
    // The others go back to the queue by themselves: they no longer count as held.
    release(held - deleting.length, heldBytes - deleting.reduce((sum, message) => sum + message.body.length, 0));
    const ack = await this.deleter.delete(deleting.map((message) => message.receiptHandle));
    try {
      outcome.onAcknowledged?.(ack);
    } catch (error) {
      this.deps.events?.onHandlerError?.({ error, messageIds });
    }
    release(held, heldBytes);
  }

  private handlerFailed(): void {
    this.failures += 1;
    this.failedAt = Date.now();
    this.pausedUntil = Math.max(this.pausedUntil, this.failedAt + backoffMs(this.backoff, this.failures));
    this.changed(this.limit.pushback('handler_error'));
  }

  private changed(change: LimitChange | undefined): void {
    if (change !== undefined) this.deps.events?.onLimitChange?.(change);
  }
}

/** Messages without an id or a receipt handle cannot be handled nor deleted: skipped. */
function toPolled(messages: Message[]): PolledMessage[] {
  const now = Date.now();
  const polled: PolledMessage[] = [];
  for (const message of messages) {
    if (message.MessageId === undefined || message.ReceiptHandle === undefined) continue;
    const sent = Number(message.Attributes?.SentTimestamp);
    const receiveCount = Number(message.Attributes?.ApproximateReceiveCount);
    polled.push({
      messageId: message.MessageId,
      receiptHandle: message.ReceiptHandle,
      body: message.Body ?? '',
      sentAt: new Date(Number.isFinite(sent) && sent > 0 ? sent : now),
      receiveCount: Number.isInteger(receiveCount) ? receiveCount : undefined,
    });
  }
  return polled;
}
