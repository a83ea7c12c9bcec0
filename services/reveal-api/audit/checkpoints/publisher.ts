import type { FastifyBaseLogger } from 'fastify';
import type { CheckpointRecord } from '../../../../lib/audit/checkpoint-record.js';
import type { CheckpointSink } from './sinks.js';

export interface PublisherOptions {
  logger: FastifyBaseLogger;
  /** Stored records with index > afterIndex, in index order, at most `limit` (audit_checkpoints). */
  load: (afterIndex: number, limit: number) => Promise<CheckpointRecord[]>;
  onFailure?: (sink: string) => void;
  onPublished?: (sink: string) => void;
  onPending?: (sink: string, count: number) => void;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

interface SinkCursor {
  sink: CheckpointSink;
  /** The highest index this sink holds; undefined until read back from the sink (or set at start for sinks that cannot be read). */
  published: number | undefined;
  running: Promise<void> | undefined;
}

const LOAD_BATCH = 100;

/**
 * Brings every sink up to the newest stored checkpoint record, in index order, each sink on its
 * own cursor: a sink that can be read back (file, S3) starts from what it holds, so records
 * stored while it was down, or before a kill -9, are published by the next leader or after a
 * restart and the published sequence has no gap. A failing sink is retried with backoff
 * (counted, logged) while the others go on; nothing here is awaited by a request.
 */
export class CheckpointPublisher {
  private readonly cursors: SinkCursor[];
  private target = 0;
  private readonly cache = new Map<number, CheckpointRecord>();
  private closing = false;
  private readonly wakeups = new Set<() => void>();

  constructor(
    sinks: readonly CheckpointSink[],
    private readonly options: PublisherOptions,
  ) {
    this.cursors = sinks.map((sink) => ({ sink, published: undefined, running: undefined }));
  }

  get sinkNames(): string[] {
    return this.cursors.map((cursor) => cursor.sink.name);
  }

  get sinks(): readonly CheckpointSink[] {
    return this.cursors.map((cursor) => cursor.sink);
  }

  /**
   * At start: sinks that cannot be read back (the log) begin after the newest stored record
   * (they get new records only); the others are read back when they first run.
   */
  start(storedIndex: number): void {
    for (const cursor of this.cursors) if (cursor.sink.latest === undefined) cursor.published ??= storedIndex;
    this.publishUpTo(storedIndex);
  }

  /** Every sink must reach `index` (the newest stored record); `fresh` is that record, saving a read. */
  publishUpTo(index: number, fresh?: CheckpointRecord): void {
    if (fresh !== undefined) this.cache.set(fresh.index, fresh);
    this.target = Math.max(this.target, index);
    for (const cursor of this.cursors) {
      // A sink that cannot be read back and never started begins with this record.
      if (cursor.sink.latest === undefined) cursor.published ??= index - 1;
      this.report(cursor);
      cursor.running ??= this.run(cursor).finally(() => (cursor.running = undefined));
    }
  }

  /** Waits until every sink has reached the target, or gives up after timeoutMs (shutdown); true when all have. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.cursors.flatMap((cursor) => (cursor.running === undefined ? [] : [cursor.running]));
      if (running.length === 0) return this.cursors.every((cursor) => (cursor.published ?? 0) >= this.target);
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), left)));
      try {
        if ((await Promise.race([Promise.all(running), timeout])) === 'timeout') return false;
      } finally {
        clearTimeout(timer);
      }
    }
  }

  async close(timeoutMs: number): Promise<boolean> {
    const drained = await this.drain(timeoutMs);
    this.closing = true;
    for (const wake of this.wakeups) wake();
    for (const cursor of this.cursors) {
      const published = cursor.published ?? 0;
      if (published < this.target) {
        this.options.logger.error(
          { sink: cursor.sink.name, publishedUpTo: published, storedUpTo: this.target },
          'audit checkpoints not published before shutdown: the next start (or leader) publishes them',
        );
      }
      cursor.sink.close?.();
    }
    return drained;
  }

  private async run(cursor: SinkCursor): Promise<void> {
    let delay = this.options.retryBaseMs ?? 1000;
    while (!this.closing && (cursor.published === undefined || cursor.published < this.target)) {
      try {
        if (cursor.published === undefined) {
          cursor.published = (await cursor.sink.latest?.(this.target))?.index ?? 0;
          this.report(cursor);
          continue;
        }
        const next = cursor.published + 1;
        const record = this.cache.get(next) ?? (await this.loadFrom(cursor.published, next));
        if (record === undefined) {
          // The database holds no such record (removed by its owner?): nothing to publish in order.
          this.options.logger.error({ sink: cursor.sink.name, index: next }, 'audit checkpoint to publish is not in the database; the sink stays at its last record');
          return;
        }
        await cursor.sink.publish(record);
        cursor.published = next;
        this.options.onPublished?.(cursor.sink.name);
        this.report(cursor);
        this.prune();
        delay = this.options.retryBaseMs ?? 1000;
      } catch (error) {
        this.options.onFailure?.(cursor.sink.name);
        this.options.logger.warn(
          { err: error, sink: cursor.sink.name, checkpoint: cursor.published === undefined ? undefined : cursor.published + 1, retryInMs: delay },
          'audit checkpoint sink failed; retrying',
        );
        await this.sleep(delay);
        delay = Math.min(delay * 2, this.options.retryMaxMs ?? 60_000);
      }
    }
  }

  private async loadFrom(after: number, next: number): Promise<CheckpointRecord | undefined> {
    for (const record of await this.options.load(after, LOAD_BATCH)) if (record.index <= this.target) this.cache.set(record.index, record);
    return this.cache.get(next);
  }

  /** Records every sink has published are dropped from the cache. */
  private prune(): void {
    const lowest = Math.min(...this.cursors.map((cursor) => cursor.published ?? 0));
    for (const index of this.cache.keys()) if (index <= lowest) this.cache.delete(index);
  }

  private report(cursor: SinkCursor): void {
    if (cursor.published !== undefined) this.options.onPending?.(cursor.sink.name, Math.max(0, this.target - cursor.published));
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
