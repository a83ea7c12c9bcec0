import type pg from 'pg';
import { withClient } from '../../db/transaction.js';

/** Budget windows, shortest first. Windows are fixed and aligned to UTC (a minute, an hour, a day). */
export const BUDGET_WINDOWS = ['minute', 'hour', 'day'] as const;
export type BudgetWindow = (typeof BUDGET_WINDOWS)[number];

/** The windowed budgets, plus break-glass reveals, which draw on a daily budget of their own. */
export type BudgetName = BudgetWindow | 'break_glass';

export const WINDOW_MS: Record<BudgetName, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000, break_glass: 86_400_000 };

export interface BudgetLimit {
  budget: BudgetName;
  limit: number;
}

/** Where an actor stands in one budget. */
export interface BudgetStanding {
  budget: BudgetName;
  limit: number;
  used: number;
  remaining: number;
  /** When the current window ends (ms since the epoch, database clock). */
  resetAt: number;
}

/** What one reveal draws: `amount` values from each of `limits`, for `actor`. */
export interface Charge {
  actor: string;
  amount: number;
  limits: readonly BudgetLimit[];
}

export interface ChargeDecision {
  granted: boolean;
  /** Standings after the decision (a granted charge is already counted). */
  standings: BudgetStanding[];
  /** The first budget the charge did not fit in. */
  exhausted?: BudgetStanding;
}

interface Usage {
  windowStart: number;
  used: number;
}

/** Every replica reads the database clock, so windows start at the same instant for all of them. */
export const READ_NOW = 'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now_ms';

/**
 * `actorsJson`: the actors as an escaped JSON array literal (actorsLiteral). JSON escapes every
 * character, so an actor PostgreSQL cannot store fails as data (SQLSTATE 22P05) instead of
 * putting a raw NUL into the statement, which breaks the protocol message (08P01).
 */
export const readUsage = (actorsJson: string) =>
  `SELECT actor, budget, (extract(epoch FROM window_start) * 1000)::float8 AS start_ms, used FROM reveal_budget_usage WHERE actor IN (SELECT jsonb_array_elements_text(${actorsJson}::jsonb))`;

export function windowStart(budget: BudgetName, nowMs: number): number {
  const length = WINDOW_MS[budget];
  return Math.floor(nowMs / length) * length;
}

/**
 * The usage of some actors as read under the audit chain lock, charged in order. Every
 * budget change happens under that lock, in the transaction of the audit row that records
 * it, so replicas never race and a rolled-back audit row takes its charge with it.
 */
export class UsageBook {
  private readonly usage = new Map<string, Usage>();
  private readonly changed = new Set<string>();
  /** Actors whose usage this book holds completely (read, or known to have none). */
  private readonly known = new Set<string>();

  constructor(
    rows: readonly { actor: string; budget: string; start_ms: number | string; used: number }[],
    private nowMs: number,
    actors: Iterable<string> = [],
  ) {
    for (const actor of actors) this.known.add(actor);
    for (const row of rows) {
      this.known.add(row.actor);
      this.usage.set(key(row.actor, row.budget), { windowStart: Number(row.start_ms), used: row.used });
    }
  }

  /** The clock of the database, as read with the book (or estimated from it later). */
  get now(): number {
    return this.nowMs;
  }

  set now(ms: number) {
    this.nowMs = ms;
  }

  knows(actor: string): boolean {
    return this.known.has(actor);
  }

  get size(): number {
    return this.known.size;
  }

  /** Takes over what `older` knows about actors this book has not read (valid only if nothing was charged in between). */
  absorb(older: UsageBook): void {
    for (const actor of older.known) {
      if (this.known.has(actor)) continue;
      this.known.add(actor);
      for (const [name, usage] of older.usage) if ((JSON.parse(name) as [string, string])[0] === actor) this.usage.set(name, usage);
    }
  }

  /** The changes were committed: the book now mirrors the table for the actors it knows. */
  committed(): void {
    this.changed.clear();
  }

  standing(actor: string, limit: BudgetLimit): BudgetStanding {
    const start = windowStart(limit.budget, this.nowMs);
    const stored = this.usage.get(key(actor, limit.budget));
    // A stored window that is not older than ours is the current one.
    const used = stored !== undefined && stored.windowStart >= start ? stored.used : 0;
    return { budget: limit.budget, limit: limit.limit, used, remaining: Math.max(0, limit.limit - used), resetAt: start + WINDOW_MS[limit.budget] };
  }

  /** All or nothing: a charge that does not fit every budget reveals nothing and counts nothing. */
  charge(charge: Charge): ChargeDecision {
    const before = charge.limits.map((limit) => this.standing(charge.actor, limit));
    const exhausted = before.find((standing) => standing.used + charge.amount > standing.limit);
    if (exhausted !== undefined || charge.amount === 0) return { granted: exhausted === undefined, standings: before, ...(exhausted === undefined ? {} : { exhausted }) };
    const after = before.map((standing) => {
      const name = key(charge.actor, standing.budget);
      this.usage.set(name, { windowStart: windowStart(standing.budget, this.nowMs), used: standing.used + charge.amount });
      this.changed.add(name);
      return { ...standing, used: standing.used + charge.amount, remaining: standing.remaining - charge.amount };
    });
    return { granted: true, standings: after };
  }

  /** The statement that stores what changed, or undefined when nothing did; `condition` guards it (a WHERE clause). */
  upsert(escapeLiteral: (value: string) => string, condition = ''): string | undefined {
    if (this.changed.size === 0) return undefined;
    const rows = [...this.changed].map((name) => {
      const [actor, budget] = JSON.parse(name) as [string, string];
      const usage = this.usage.get(name) as Usage;
      return { actor, budget, window_start: new Date(usage.windowStart).toISOString(), used: usage.used };
    });
    return `INSERT INTO reveal_budget_usage (actor, budget, window_start, used)
SELECT r.actor, r.budget, r.window_start::timestamptz, r.used
FROM jsonb_to_recordset(${escapeLiteral(JSON.stringify(rows))}::jsonb) AS r(actor text, budget text, window_start text, used integer)
${condition}
ON CONFLICT (actor, budget) DO UPDATE SET window_start = EXCLUDED.window_start, used = EXCLUDED.used`;
  }
}

function key(actor: string, budget: string): string {
  return JSON.stringify([actor, budget]);
}

/** Reads the book for some actors inside a transaction that already holds the chain lock. */
export async function readUsageBook(client: pg.PoolClient, actors: readonly string[]): Promise<UsageBook> {
  const results = (await client.query(`${READ_NOW}; ${readUsage(actorsLiteral((value) => client.escapeLiteral(value), actors))}`)) as unknown as pg.QueryResult[];
  return bookFrom(results.at(-2), results.at(-1), actors);
}

export function bookFrom(now: pg.QueryResult | undefined, usage: pg.QueryResult | undefined, actors: readonly string[]): UsageBook {
  const nowMs = Number((now?.rows[0] as { now_ms?: number } | undefined)?.now_ms ?? Date.now());
  return new UsageBook((usage?.rows ?? []) as { actor: string; budget: string; start_ms: number; used: number }[], nowMs, actors);
}

/** Standings without charging (GET /me): a plain read, no lock. */
export async function readStandings(pool: pg.Pool, actor: string, limits: readonly BudgetLimit[]): Promise<BudgetStanding[]> {
  if (limits.length === 0) return [];
  return withClient(pool, async (client) => {
    const book = await readUsageBook(client, [actor]);
    return limits.map((limit) => book.standing(actor, limit));
  });
}

/** The actors of readUsage, as an escaped SQL literal. */
export function actorsLiteral(escapeLiteral: (value: string) => string, actors: readonly string[]): string {
  return escapeLiteral(JSON.stringify(actors));
}
