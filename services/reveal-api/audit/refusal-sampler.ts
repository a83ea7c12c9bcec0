import { randomUUID } from 'node:crypto';
import { storable, type AuditEntry } from '../../../lib/audit/entry.js';
import type { ClosingWindow, RefusalWindows } from './refusal-windows.js';

/** How often the counts of open windows are stored (what a kill -9 can lose at most) and closed windows summarised. */
export const REFUSAL_FLUSH_MS = 1_000;
/** Every this many flushes, rows left by replicas that stopped are looked for and summarised. */
const RECOVER_EVERY = 5;

/** Shared by reference between the open map, the closing list and a save in flight: a save's outcome reaches a window closed meanwhile. */
interface OpenWindow extends ClosingWindow {
  /** Resolves once the first refusal's own audit row is committed (every later refusal waits for it). */
  firstWritten: Promise<void>;
}

export interface RefusalSamplerOptions {
  windowMs: number;
  store: RefusalWindows;
  /** Beyond this many open windows, refusals of new sources share one window per action and code (bounded memory and rows). */
  maxOpen?: number;
  now?: () => number;
  /** A flush step failed (the counts stay in memory and are retried). */
  onError?: (step: 'save' | 'close' | 'recover', error: unknown) => void;
  onRecovered?: (refusals: number) => void;
}

export type Accounted = 'first' | 'counted';

const SHARED_NOTE = 'more sources than tracked at once: the refusals of every further source are counted together';

/**
 * Keeps a flood of refusals from growing the audit log without bound while keeping every one
 * accountable, and keeps that accounting through a crash. Per sampling key (source, action,
 * code), the first refusal in a window gets its own audit row, committed before the refusal is
 * answered; the rest wait for that row, are counted, and become one summary row (reason
 * `<code> repeated=N from=… to=…`, the first's actor, address and request id) when the window
 * closes, or at shutdown. The counts are stored in refusal_windows about once a second
 * (flush), so a kill -9 loses at most that last second: another replica (or this one, restarted)
 * writes the summary of what was stored.
 */
export class RefusalSampler {
  private readonly open = new Map<string, OpenWindow>();
  /** Closed windows whose summary is not written yet (retried on the next flush). */
  private closing: OpenWindow[] = [];
  private readonly maxOpen: number;
  private readonly now: () => number;
  /** Flushes run one at a time: a save never races the close of the same window. */
  private serial: Promise<unknown> = Promise.resolve();
  private flushes = 0;

  constructor(private readonly options: RefusalSamplerOptions) {
    this.maxOpen = options.maxOpen ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * Accounts one refusal. 'first': `writeFirst` wrote its own row (committed). 'counted': it
   * joins the open window's summary, once the window's first row is committed. Rejects when the
   * first row cannot be written (the refusal must then fail closed).
   */
  async account(key: readonly string[], code: string, entry: AuditEntry, bytes: number, writeFirst: () => Promise<void>): Promise<Accounted> {
    const now = this.now();
    let source = JSON.stringify(key);
    let current = this.open.get(source);
    let shared = false;
    if (current !== undefined && now >= current.endsAt) {
      this.retire(current, now);
      current = undefined;
    }
    if (current === undefined && this.open.size >= this.maxOpen) {
      // Too many sources at once: new ones share a window per action and code, without naming a source.
      source = JSON.stringify(['*', entry.action, code]);
      shared = true;
      current = this.open.get(source);
      if (current !== undefined && now >= current.endsAt) {
        this.retire(current, now);
        current = undefined;
      }
    }
    if (current !== undefined) {
      current.refusals += 1;
      current.bytes += bytes;
      await current.firstWritten;
      return 'counted';
    }
    const window: OpenWindow = {
      id: randomUUID(),
      source,
      code,
      startedAt: now,
      endsAt: now + this.options.windowMs,
      refusals: 0,
      bytes: 0,
      summary: {
        ...storable(entry),
        tokens: [],
        fieldCounts: {},
        purpose: null,
        ticket: null,
        // A shared window names no source: its first refusal's row does.
        ...(shared ? { actor: null, roles: [], clientAddress: null, reason: SHARED_NOTE } : { reason: null }),
      },
      inRow: 0,
      bytesInRow: 0,
      closedAt: now + this.options.windowMs,
      firstWritten: writeFirst(),
    };
    this.open.set(source, window);
    try {
      await window.firstWritten;
    } catch (error) {
      // Nothing of this window is on record: the next refusal starts it again.
      if (this.open.get(source) === window) this.open.delete(source);
      throw error;
    }
    return 'first';
  }

  /** Stores open counts, writes the summaries of closed windows, and now and then recovers stopped replicas' windows. */
  flush(): Promise<void> {
    return this.queue(async () => {
      const now = this.now();
      for (const window of [...this.open.values()]) if (now >= window.endsAt) this.retire(window, now);
      await this.writeClosing();
      await this.save();
      this.flushes += 1;
      if (this.flushes % RECOVER_EVERY === 1) await this.recover();
    });
  }

  /** Shutdown: every open window is closed now and its summary written. */
  close(): Promise<void> {
    return this.queue(async () => {
      const now = this.now();
      for (const window of [...this.open.values()]) this.retire(window, now);
      await this.writeClosing();
    });
  }

  private queue(step: () => Promise<void>): Promise<void> {
    const run = this.serial.then(step, step);
    this.serial = run.catch(() => undefined);
    return run;
  }

  private retire(window: OpenWindow, now: number): void {
    if (this.open.get(window.source) === window) this.open.delete(window.source);
    // The first refusal's row is all there is to say about a window nobody repeated.
    window.closedAt = now;
    if (window.refusals > 0 || window.inRow > 0) this.closing.push(window);
  }

  private async writeClosing(): Promise<void> {
    if (this.closing.length === 0) return;
    const batch = this.closing;
    this.closing = [];
    try {
      await this.options.store.close(batch);
    } catch (error) {
      this.closing = [...batch, ...this.closing];
      this.options.onError?.('close', error);
    }
  }

  private async save(): Promise<void> {
    const fresh: OpenWindow[] = [];
    const stored: OpenWindow[] = [];
    for (const window of this.open.values()) {
      if (window.inRow > 0) stored.push(window);
      else if (window.refusals > 0) fresh.push(window);
    }
    if (fresh.length === 0 && stored.length === 0) return;
    // What is sent is what the rows will hold, whatever arrives while the statement runs.
    const sent = new Map([...fresh, ...stored].map((window) => [window, { refusals: window.refusals, bytes: window.bytes }]));
    try {
      const gone = await this.options.store.save(
        fresh.map((window) => ({ ...window, ...sent.get(window) })),
        stored.map((window) => ({ ...window, ...sent.get(window) })),
      );
      for (const [window, counts] of sent) {
        if (gone.has(window.id)) {
          // Another replica took this row as abandoned and summarised what it held: keep only the rest, under a new row.
          window.refusals -= window.inRow;
          window.bytes -= window.bytesInRow;
          window.id = randomUUID();
          window.inRow = 0;
          window.bytesInRow = 0;
        } else {
          window.inRow = counts.refusals;
          window.bytesInRow = counts.bytes;
        }
      }
    } catch (error) {
      this.options.onError?.('save', error);
    }
  }

  private async recover(): Promise<void> {
    try {
      const { refusals } = await this.options.store.recover();
      if (refusals > 0) this.options.onRecovered?.(refusals);
    } catch (error) {
      this.options.onError?.('recover', error);
    }
  }
}
