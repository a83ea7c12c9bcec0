import type { AuditEntry } from '../../../lib/audit/entry.js';

/** Refusal codes that a caller can repeat as fast as they can send requests. */
export const SAMPLED_REFUSALS: ReadonlySet<string> = new Set(['rate_limited', 'budget_exhausted']);

interface OpenWindow {
  endsAt: number;
  suppressed: number;
  /** The audited first refusal: its actor, roles, address and request id head the summary row. */
  first: AuditEntry;
}

export interface RefusalSamplerOptions {
  windowMs: number;
  /** Writes a summary row; failures are the caller's to log (the refusals were already answered). */
  write: (entry: AuditEntry) => Promise<unknown>;
  /** Beyond this many open windows every refusal is audited in full (bounded memory, never fewer rows). */
  maxOpen?: number;
  now?: () => number;
}

/**
 * Keeps a flood of identical refusals from growing the audit log without bound while keeping
 * every one accountable: per actor (or address), action and code, the first refusal in a
 * window gets its own row; the rest are counted and written as one summary row (reason
 * `<code> repeated=N ...`, request_id of the first) when the window closes, or when the same
 * caller is refused again after it closed, or at shutdown.
 */
export class RefusalSampler {
  private readonly open = new Map<string, OpenWindow>();
  private readonly maxOpen: number;
  private readonly now: () => number;

  constructor(private readonly options: RefusalSamplerOptions) {
    this.maxOpen = options.maxOpen ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** True: audit this refusal in full. False: it was counted into the open window's summary. */
  admit(key: string, entry: AuditEntry): boolean {
    const now = this.now();
    const current = this.open.get(key);
    if (current !== undefined && now < current.endsAt) {
      current.suppressed += 1;
      return false;
    }
    if (current !== undefined) this.close(key, current);
    if (this.open.size >= this.maxOpen) return true;
    this.open.set(key, { endsAt: now + this.options.windowMs, suppressed: 0, first: entry });
    return true;
  }

  /** Writes the summaries of windows that have closed (run periodically). */
  async flushClosed(): Promise<void> {
    const now = this.now();
    const writes: Promise<unknown>[] = [];
    for (const [key, window] of this.open) if (now >= window.endsAt) writes.push(this.close(key, window));
    await Promise.allSettled(writes);
  }

  /** Writes every pending summary (shutdown). */
  async flushAll(): Promise<void> {
    await Promise.allSettled([...this.open].map(([key, window]) => this.close(key, window)));
  }

  private close(key: string, window: OpenWindow): Promise<unknown> {
    this.open.delete(key);
    if (window.suppressed === 0) return Promise.resolve();
    const started = new Date(window.endsAt - this.options.windowMs).toISOString();
    const ended = new Date(Math.min(window.endsAt, this.now())).toISOString();
    const code = window.first.reason?.split(' ')[0] ?? 'refused';
    return this.options.write({
      ...window.first,
      tokens: [],
      fieldCounts: {},
      purpose: null,
      ticket: null,
      reason: `${code} repeated=${window.suppressed} from=${started} to=${ended} (summary: refusals after the first in this window)`,
    });
  }
}
