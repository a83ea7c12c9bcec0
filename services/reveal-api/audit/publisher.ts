import type { FastifyBaseLogger } from 'fastify';
import type { SignedCheckpoint } from '../../../lib/audit/checkpoint.js';
import type { CheckpointSink } from './sinks.js';

export interface PublisherOptions {
  logger: FastifyBaseLogger;
  onFailure?: (sink: string) => void;
  onPublished?: (sink: string) => void;
  onPending?: (sink: string, count: number) => void;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

interface SinkQueue {
  sink: CheckpointSink;
  queue: SignedCheckpoint[];
  running: Promise<void> | undefined;
}

/**
 * Publishes each checkpoint to every sink, in order, each sink on its own queue: a failing
 * sink is retried with backoff (counted, logged) while the others go on, and nothing here is
 * awaited by a request, so a sink outage never blocks reveals.
 */
export class CheckpointPublisher {
  private readonly queues: SinkQueue[];
  private closing = false;
  private readonly wakeups = new Set<() => void>();

  constructor(
    sinks: readonly CheckpointSink[],
    private readonly options: PublisherOptions,
  ) {
    this.queues = sinks.map((sink) => ({ sink, queue: [], running: undefined }));
  }

  get sinkNames(): string[] {
    return this.queues.map((queue) => queue.sink.name);
  }

  publish(checkpoint: SignedCheckpoint): void {
    for (const entry of this.queues) {
      entry.queue.push(checkpoint);
      this.options.onPending?.(entry.sink.name, entry.queue.length);
      entry.running ??= this.run(entry).finally(() => (entry.running = undefined));
    }
  }

  /** Waits until every queue is empty, or gives up after timeoutMs (shutdown); true when all were published. */
  async drain(timeoutMs: number): Promise<boolean> {
    const all = Promise.all(this.queues.map((entry) => entry.running ?? Promise.resolve())).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(timeoutMs: number): Promise<boolean> {
    const drained = await this.drain(timeoutMs);
    this.closing = true;
    for (const wake of this.wakeups) wake();
    for (const entry of this.queues) {
      if (entry.queue.length > 0) {
        this.options.logger.error({ sink: entry.sink.name, unpublished: entry.queue.map((item) => item.body.index) }, 'audit checkpoints not published before shutdown');
      }
      entry.sink.close?.();
    }
    return drained;
  }

  private async run(entry: SinkQueue): Promise<void> {
    let delay = this.options.retryBaseMs ?? 1000;
    while (entry.queue.length > 0 && !this.closing) {
      const checkpoint = entry.queue[0]!;
      try {
        await entry.sink.publish(checkpoint);
        entry.queue.shift();
        this.options.onPublished?.(entry.sink.name);
        this.options.onPending?.(entry.sink.name, entry.queue.length);
        delay = this.options.retryBaseMs ?? 1000;
      } catch (error) {
        this.options.onFailure?.(entry.sink.name);
        this.options.logger.warn({ err: error, sink: entry.sink.name, checkpoint: checkpoint.body.index, retryInMs: delay }, 'audit checkpoint sink failed; retrying');
        await this.sleep(delay);
        delay = Math.min(delay * 2, this.options.retryMaxMs ?? 60_000);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakeups.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      timer.unref();
      this.wakeups.add(wake);
    });
  }
}
