/**
 * Group commit: items submitted while every writer is busy wait and then share the next
 * transaction (one round trip and one fsync for many callers). Each submit() resolves with its
 * own item's result once the group holding it committed, or rejects with the group's error.
 * Knows nothing of what a transaction writes: `commit` does that.
 */
export interface GroupCommitOptions<T, R> {
  /** Commits a group of items in one transaction; resolves with one result per item, in order. */
  commit: (items: readonly T[]) => Promise<readonly R[]>;
  /** Transactions in flight at once (default 1). */
  writers?: number;
  /** Upper bound on a group's total weight; a group always takes at least one item. Default: no bound. */
  maxWeight?: number;
  /** An item's share of maxWeight (default 1: maxWeight is then a number of items). */
  weight?: (item: T) => number;
  /**
   * When a group of several items fails with an error this accepts, each of its items is
   * committed alone, so only the item the database refuses fails (default: the whole group fails).
   */
  retryAlone?: (error: unknown) => boolean;
}

interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<T, R> {
  private readonly queue: Pending<T, R>[] = [];
  private writing = 0;
  private readonly writers: number;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: GroupCommitOptions<T, R>) {
    this.writers = Math.max(1, Math.floor(options.writers ?? 1));
  }

  /** Resolves with the item's result once it is committed; rejects with its group's error. */
  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.writing < this.writers) void this.drain();
    });
  }

  /** Resolves once nothing is queued or being committed (shutdown). */
  idle(): Promise<void> {
    if (this.writing === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async drain(): Promise<void> {
    this.writing += 1;
    try {
      while (this.queue.length > 0) {
        const group = this.takeGroup();
        try {
          settle(group, await this.options.commit(group.map((pending) => pending.item)));
        } catch (error) {
          if (group.length === 1 || this.options.retryAlone?.(error) !== true) {
            for (const pending of group) pending.reject(error);
            continue;
          }
          // One item of the group holds something the database refuses: commit each alone.
          for (const pending of group) {
            await this.options.commit([pending.item]).then(
              (results) => settle([pending], results),
              (itemError: unknown) => pending.reject(itemError),
            );
          }
        }
      }
    } finally {
      // Same synchronous turn as the empty-queue check: a submit() after this starts a new drain.
      this.writing -= 1;
      if (this.writing === 0 && this.queue.length === 0) {
        for (const resolve of this.idleWaiters.splice(0)) resolve();
      }
    }
  }

  /** The longest prefix of the queue within maxWeight (at least one item). */
  private takeGroup(): Pending<T, R>[] {
    const { maxWeight = Infinity, weight = () => 1 } = this.options;
    let total = 0;
    let count = 0;
    for (const pending of this.queue) {
      const next = weight(pending.item);
      if (count > 0 && total + next > maxWeight) break;
      total += next;
      count += 1;
    }
    return this.queue.splice(0, count);
  }
}

function settle<T, R>(group: readonly Pending<T, R>[], results: readonly R[]): void {
  group.forEach((pending, index) => {
    if (index < results.length) pending.resolve(results[index] as R);
    else pending.reject(new Error(`group commit: commit returned ${results.length} results for ${group.length} items`));
  });
}
