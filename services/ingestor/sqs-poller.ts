import { DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, type Message, type QueueAttributeName, type SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { backoffMs, DEFAULT_BACKOFF, sleep, type BackoffPolicy } from './backoff.js';

/**
 * The SQS transport, and nothing else: long-polls a queue with a few concurrent pollers, hands
 * each received batch to `handleBatch`, deletes exactly the messages the handler reports as
 * succeeded and leaves the rest to come back after the visibility timeout. It knows nothing of
 * what the messages mean (no database, no keys): the caller composes it with its own handler.
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

/** What SQS did with a batch's delete. Never thrown: a failed delete is reported here. */
export interface Acknowledgement {
  /** Messages (receipt handles) SQS deleted. */
  deleted: number;
  /** Messages SQS did not delete: they come back after the visibility timeout. */
  failed: number;
  /** SQS error codes of the entries it refused (when the call itself succeeded). */
  failedCodes: string[];
  /** Set when DeleteMessageBatch itself failed (then `failed` counts every handle). */
  error?: unknown;
}

export interface BatchOutcome {
  /** Message ids to delete; every other message of the batch stays on the queue. */
  succeeded: Iterable<string>;
  /**
   * Called once the delete has finished (or at once when nothing is to be deleted). The poller
   * receives its next batch without waiting for this, but stop() does wait for it.
   */
  onAcknowledged?: (ack: Acknowledgement) => void;
}

/**
 * Handles one batch. Resolve with the ids that may be deleted; throw when none may (the poller
 * then backs off before its next receive, as after a receive error).
 */
export type BatchHandler = (messages: PolledMessage[]) => Promise<BatchOutcome>;

/** Observability hooks: the poller logs nothing itself. */
export interface SqsPollerEvents {
  /** A receive failed; the poller sleeps `delayMs` before trying again. */
  onReceiveError?: (event: { poller: number; error: unknown; failures: number; delayMs: number }) => void;
  /** The handler threw (or its onAcknowledged did): nothing of the batch was deleted by that failure. */
  onHandlerError?: (event: { poller: number; error: unknown; messageIds: string[] }) => void;
}

/** An integer option in [min, max], with one message for a wrong type and a wrong value alike. */
const integer = (min: number, max: number) => {
  const error = `must be an integer from ${min} to ${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};

const optionsSchema = z.object({
  queueUrl: z.url({ error: 'must be the queue URL' }),
  /** Messages per receive: 1..10 (the SQS limit). */
  batchSize: integer(1, 10),
  /** Long-poll wait: 0..20 s (the SQS limit). 0 = short polling (the poller then pauses between empty receives). */
  waitTimeSeconds: integer(0, 20),
  /** Per-receive visibility timeout, 0..43200 s; undefined keeps the queue's own setting. */
  visibilityTimeoutSeconds: integer(0, 43_200).optional(),
  /** Concurrent long-pollers; each handles one batch at a time. */
  pollers: integer(1, 64),
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
});

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

export type SqsPollerState = 'idle' | 'polling' | 'stopping' | 'stopped';

export interface SqsPollerDeps {
  sqs: SQSClient;
  options: SqsPollerOptions;
  handleBatch: BatchHandler;
  events?: SqsPollerEvents;
}

export class SqsPoller {
  readonly queueUrl: string;
  private readonly options: z.output<typeof optionsSchema>;
  private readonly backoff: BackoffPolicy;
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  private stopped: Promise<void> | undefined;
  private current: SqsPollerState = 'idle';

  constructor(private readonly deps: SqsPollerDeps) {
    this.options = validate(deps.options);
    this.queueUrl = this.options.queueUrl;
    this.backoff = this.options.backoff ?? DEFAULT_BACKOFF;
  }

  get state(): SqsPollerState {
    return this.current;
  }

  /** Starts the pollers. Idempotent; a stopped poller does not start again. */
  start(): void {
    if (this.current !== 'idle') return;
    this.current = 'polling';
    this.loops = Array.from({ length: this.options.pollers }, (_, index) => this.pollLoop(index));
  }

  /**
   * Stops receiving (waiting long polls and back-off sleeps end at once), lets every batch in
   * the handler finish and its delete complete, then resolves. Idempotent.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.current = 'stopping';
      this.abort.abort();
      await Promise.all(this.loops);
      this.current = 'stopped';
    })();
    return this.stopped;
  }

  /** Asks the queue itself (GetQueueAttributes), now: pollers may be in back-off for a while. */
  async checkQueue(timeoutMs: number): Promise<void> {
    await this.deps.sqs.send(new GetQueueAttributesCommand({ QueueUrl: this.queueUrl, AttributeNames: ['QueueArn'] }), {
      abortSignal: AbortSignal.timeout(timeoutMs),
    });
  }

  private get stopping(): boolean {
    return this.current === 'stopping' || this.current === 'stopped';
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

  private async pollLoop(poller: number): Promise<void> {
    let failures = 0;
    // The previous batch's delete, left running while this poller receives the next batch.
    let deleting: Promise<void> = Promise.resolve();
    try {
      while (!this.stopping) {
        let received: Message[];
        try {
          received = await this.receive();
        } catch (error) {
          if (this.stopping) break;
          failures += 1;
          const delayMs = backoffMs(this.backoff, failures);
          this.deps.events?.onReceiveError?.({ poller, error, failures, delayMs });
          await sleep(delayMs, this.abort.signal);
          continue;
        }
        if (received.length === 0) {
          // Without long polling an empty queue would be polled in a tight loop.
          if (this.options.waitTimeSeconds === 0) await sleep(this.options.idlePauseMs ?? DEFAULT_IDLE_PAUSE_MS, this.abort.signal);
          continue;
        }
        const messages = toPolled(received);
        let acknowledged: Promise<void>;
        try {
          acknowledged = messages.length === 0 ? Promise.resolve() : (await this.handle(poller, messages)).acknowledged;
        } catch {
          failures += 1;
          await sleep(backoffMs(this.backoff, failures), this.abort.signal);
          continue;
        }
        failures = 0;
        // This batch's delete has started; the poller goes on once the previous one is done
        // (it had a receive and a handler to finish), so at most two are in flight per poller.
        await deleting;
        deleting = acknowledged;
      }
    } finally {
      // stop() awaits the loops: every handled batch is deleted before it resolves.
      await deleting;
    }
  }

  /**
   * Runs the handler; once it resolves, starts the delete and returns it, wrapped: the caller
   * decides when to wait for it (a promise returned bare would be awaited here).
   */
  private async handle(poller: number, messages: PolledMessage[]): Promise<{ acknowledged: Promise<void> }> {
    const messageIds = [...new Set(messages.map((message) => message.messageId))];
    let outcome: BatchOutcome;
    try {
      outcome = await this.deps.handleBatch(messages);
    } catch (error) {
      this.deps.events?.onHandlerError?.({ poller, error, messageIds });
      throw error;
    }
    // Only what the handler vouches for: a message deleted before it is safe would be lost.
    const succeeded = new Set(outcome.succeeded);
    const handles = messages.filter((message) => succeeded.has(message.messageId)).map((message) => message.receiptHandle);
    const acknowledged = this.delete(handles)
      .then((ack) => outcome.onAcknowledged?.(ack))
      // Nobody awaits this promise at once: a throwing callback must not become an unhandled rejection.
      .catch((error: unknown) => this.deps.events?.onHandlerError?.({ poller, error, messageIds }));
    return { acknowledged };
  }

  /** Entry ids are indexes: SQS requires them distinct within a call, message ids may repeat. */
  private async delete(handles: string[]): Promise<Acknowledgement> {
    if (handles.length === 0) return { deleted: 0, failed: 0, failedCodes: [] };
    const acknowledgement: Acknowledgement = { deleted: 0, failed: 0, failedCodes: [] };
    // DeleteMessageBatch takes at most 10 entries (a receive returns at most 10 messages).
    for (let start = 0; start < handles.length; start += 10) {
      const chunk = handles.slice(start, start + 10);
      try {
        const out = await this.deps.sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: chunk.map((ReceiptHandle, index) => ({ Id: String(index), ReceiptHandle })),
          }),
        );
        const failed = out.Failed ?? [];
        acknowledgement.deleted += chunk.length - failed.length;
        acknowledgement.failed += failed.length;
        acknowledgement.failedCodes.push(...failed.map((entry) => entry.Code ?? 'unknown'));
      } catch (error) {
        acknowledgement.failed += chunk.length;
        acknowledgement.error ??= error;
      }
    }
    return acknowledgement;
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
