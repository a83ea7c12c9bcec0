import { DeleteMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';

/**
 * Deletes received messages with DeleteMessageBatch, off the receive path: handles from any
 * number of handled batches are pooled and sent ten per call (the SQS maximum) as soon as ten
 * are waiting, the rest at the end of the current event-loop turn (batches a group commit
 * acknowledges together share calls). Nothing waits on a timer, so a delete leaves well within
 * the visibility timeout. A failed call or entry is never thrown: it is reported to the caller
 * of delete() (and to onDelete), which decides how to log and count it.
 */

/** What SQS did with a set of handles. */
export interface Acknowledgement {
  /** Messages (receipt handles) SQS deleted. */
  deleted: number;
  /** Messages SQS did not delete: they come back after the visibility timeout. */
  failed: number;
  /** SQS error codes of the entries it refused (when the call itself succeeded). */
  failedCodes: string[];
  /** Set when a DeleteMessageBatch call itself failed (then every handle of that call counts as failed). */
  error?: unknown;
}

export interface DeleteCall {
  durationMs: number;
  entries: number;
  failed: number;
  error?: unknown;
}

interface Ticket {
  ack: Acknowledgement;
  pending: number;
  resolve: (ack: Acknowledgement) => void;
}

interface Entry {
  handle: string;
  ticket: Ticket;
}

const MAX_ENTRIES = 10;

export class SqsDeleter {
  private queue: Entry[] = [];
  private flushScheduled = false;
  private readonly calls = new Set<Promise<void>>();

  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    private readonly onCall?: (call: DeleteCall) => void,
  ) {}

  /** Resolves once every handle was deleted or refused; never rejects. */
  delete(handles: readonly string[]): Promise<Acknowledgement> {
    if (handles.length === 0) return Promise.resolve({ deleted: 0, failed: 0, failedCodes: [] });
    return new Promise((resolve) => {
      const ticket: Ticket = { ack: { deleted: 0, failed: 0, failedCodes: [] }, pending: handles.length, resolve };
      for (const handle of handles) this.queue.push({ handle, ticket });
      this.flushFull();
      if (this.queue.length > 0 && !this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.flushFull();
          if (this.queue.length > 0) this.send(this.queue.splice(0));
        });
      }
    });
  }

  /** Resolves once no call is in flight and nothing waits (shutdown). */
  async idle(): Promise<void> {
    while (this.calls.size > 0 || this.queue.length > 0 || this.flushScheduled) {
      if (this.calls.size > 0) await Promise.all(this.calls);
      else await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private flushFull(): void {
    while (this.queue.length >= MAX_ENTRIES) this.send(this.queue.splice(0, MAX_ENTRIES));
  }

  private send(entries: Entry[]): void {
    const call = this.call(entries).finally(() => this.calls.delete(call));
    this.calls.add(call);
  }

  /** Entry ids are indexes: SQS requires them distinct within a call, message ids may repeat. */
  private async call(entries: Entry[]): Promise<void> {
    const started = performance.now();
    let failedIds: { id: string; code: string }[] = [];
    let error: unknown;
    try {
      const out = await this.sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries.map((entry, index) => ({ Id: String(index), ReceiptHandle: entry.handle })) }),
      );
      failedIds = (out.Failed ?? []).map((failure) => ({ id: failure.Id ?? '', code: failure.Code ?? 'unknown' }));
    } catch (caught) {
      error = caught;
    }
    const failedAt = new Map(failedIds.map((failure) => [failure.id, failure.code]));
    entries.forEach((entry, index) => {
      const { ack } = entry.ticket;
      const code = failedAt.get(String(index));
      if (error !== undefined) {
        ack.failed += 1;
        ack.error ??= error;
      } else if (code !== undefined) {
        ack.failed += 1;
        ack.failedCodes.push(code);
      } else {
        ack.deleted += 1;
      }
      entry.ticket.pending -= 1;
      if (entry.ticket.pending === 0) entry.ticket.resolve(ack);
    });
    this.onCall?.({ durationMs: performance.now() - started, entries: entries.length, failed: error === undefined ? failedAt.size : entries.length, ...(error === undefined ? {} : { error }) });
  }
}
