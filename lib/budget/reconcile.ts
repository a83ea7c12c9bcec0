import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type pg from 'pg';
import { PII_FIELDS } from '../crypto/normalize.js';
import { WINDOW_MS, windowStart, type BudgetLimit, type BudgetName } from './ledger.js';

/** Audit actions whose revealed values are charged to the actor's budgets (field_counts = values revealed). */
export const CHARGED_ACTIONS = ['reveal', 'reveal.break_glass', 'reveal.collect'] as const;

/**
 * How far a row's occurred_at (the writing replica's clock) may be from the database clock that
 * chose its budget window. Reveals in the first SKEW of a window are not counted (they may have
 * been charged to the previous one), and windows within SKEW of their start or end are not
 * compared: the check can miss a little, never report what did not happen.
 */
export const CLOCK_SKEW_MS = 2_000;

type Queryable = Pick<pg.PoolClient, 'query'>;

/** A charged row of the chain, as reconciliation reads it. */
export interface ChargedRow {
  seq: number;
  atMs: number;
  action: string;
  actor: string;
  roles: string[];
  fieldCounts: Record<string, number>;
}

/** A current window whose stored usage is below the chain's count. */
export interface BudgetMismatch {
  actor: string;
  budget: BudgetName;
  windowStart: number;
  stored: number;
  chain: number;
}

export interface UsageComparison {
  /** Current windows (actor, budget) with values revealed in them that were compared. */
  checked: number;
  mismatches: BudgetMismatch[];
}

/** The budgets a row was charged to, from the roles it records and the action (break-glass or not). */
export type LimitsOf = (roles: readonly string[], action: string) => readonly BudgetLimit[];

interface Sum {
  actor: string;
  budget: BudgetName;
  windowStart: number;
  amount: number;
}

const PAGE_SIZE = 5_000;

/**
 * Values revealed per actor and budget window, summed from the audit chain's field_counts and
 * kept up to date incrementally (each call reads only the rows appended since the last one), so
 * comparing it with reveal_budget_usage costs the new rows, not the day's.
 */
export class ChainUsage {
  private readonly sums = new Map<string, Sum>();
  private lastSeq: number | undefined;

  constructor(private readonly limitsOf: LimitsOf) {}

  /** Reads the charged rows appended since the last call (the first call: since the start of the current day). */
  async catchUp(db: Queryable, nowMs: number): Promise<void> {
    const { rows: heads } = await db.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM audit_log');
    const head = Number(heads[0]?.seq ?? 0);
    let after = this.lastSeq ?? (await firstSeqSince(db, windowStart('day', nowMs) - 60_000));
    while (after < head) {
      const { rows } = await db.query<{ seq: string; at_ms: number; action: string; actor: string; roles: string[]; field_counts: Record<string, number> }>(
        `SELECT seq, (extract(epoch FROM occurred_at) * 1000)::float8 AS at_ms, action, actor, roles, field_counts
         FROM audit_log
         WHERE seq > $1 AND seq <= $2 AND action = ANY($3::text[]) AND outcome IN ('allowed', 'partial') AND actor IS NOT NULL
         ORDER BY seq LIMIT $4`,
        [after, head, CHARGED_ACTIONS, PAGE_SIZE],
      );
      for (const raw of rows) this.add({ seq: Number(raw.seq), atMs: Number(raw.at_ms), action: raw.action, actor: raw.actor, roles: raw.roles, fieldCounts: raw.field_counts });
      after = rows.length < PAGE_SIZE ? head : Number(rows.at(-1)?.seq ?? head);
      await yieldToEventLoop();
    }
    this.lastSeq = head;
  }

  add(row: ChargedRow): void {
    const amount = PII_FIELDS.reduce((sum, field) => sum + (Number(row.fieldCounts[field]) || 0), 0);
    if (amount <= 0) return;
    for (const limit of this.limitsOf(row.roles, row.action)) {
      const start = windowStart(limit.budget, row.atMs);
      if (row.atMs < start + CLOCK_SKEW_MS) continue;
      const name = JSON.stringify([row.actor, limit.budget]);
      const sum = this.sums.get(name);
      if (sum === undefined || sum.windowStart < start) this.sums.set(name, { actor: row.actor, budget: limit.budget, windowStart: start, amount });
      else if (sum.windowStart === start) sum.amount += amount;
    }
  }

  /**
   * Compares the current windows with the stored usage (read after the rows, so a charge
   * committed meanwhile can only make the table look higher, never lower). Forgets windows
   * that have ended.
   */
  async compare(db: Queryable, nowMs: number): Promise<UsageComparison> {
    const current: Sum[] = [];
    for (const [name, sum] of this.sums) {
      const start = windowStart(sum.budget, nowMs);
      if (sum.windowStart < start) {
        this.sums.delete(name);
        continue;
      }
      // Near either edge of the window, clocks may disagree on which window a reveal belongs to.
      if (sum.windowStart === start && nowMs >= start + CLOCK_SKEW_MS && nowMs < start + WINDOW_MS[sum.budget] - CLOCK_SKEW_MS) current.push(sum);
    }
    if (current.length === 0) return { checked: 0, mismatches: [] };
    const actors = [...new Set(current.map((sum) => sum.actor))];
    const { rows } = await db.query<{ actor: string; budget: string; start_ms: number; used: number }>(
      'SELECT actor, budget, (extract(epoch FROM window_start) * 1000)::float8 AS start_ms, used FROM reveal_budget_usage WHERE actor = ANY($1::text[])',
      [actors],
    );
    const stored = new Map(rows.map((row) => [JSON.stringify([row.actor, row.budget]), { windowStart: Number(row.start_ms), used: row.used }]));
    const mismatches: BudgetMismatch[] = [];
    let checked = 0;
    for (const sum of current) {
      const row = stored.get(JSON.stringify([sum.actor, sum.budget]));
      // A stored window newer than ours: this clock is behind the writer's; compare next time.
      if (row !== undefined && row.windowStart > sum.windowStart) continue;
      checked += 1;
      const used = row !== undefined && row.windowStart === sum.windowStart ? row.used : 0;
      if (used < sum.amount) mismatches.push({ actor: sum.actor, budget: sum.budget, windowStart: sum.windowStart, stored: used, chain: sum.amount });
    }
    return { checked, mismatches };
  }
}

/** Raises each mismatched window's stored usage to the chain's count (the caller holds the chain lock, like every budget change). */
export async function raiseUsage(db: Queryable, mismatches: readonly BudgetMismatch[]): Promise<void> {
  if (mismatches.length === 0) return;
  const rows = mismatches.map((mismatch) => ({ actor: mismatch.actor, budget: mismatch.budget, window_start: new Date(mismatch.windowStart).toISOString(), used: mismatch.chain }));
  await db.query(
    `INSERT INTO reveal_budget_usage (actor, budget, window_start, used)
     SELECT r.actor, r.budget, r.window_start::timestamptz, r.used
     FROM jsonb_to_recordset($1::jsonb) AS r(actor text, budget text, window_start text, used integer)
     ON CONFLICT (actor, budget) DO UPDATE SET window_start = EXCLUDED.window_start, used = EXCLUDED.used`,
    [JSON.stringify(rows)],
  );
}

/** The seq just before the first row written since `sinceMs` (a minute early: replicas' clocks differ a little). */
async function firstSeqSince(db: Queryable, sinceMs: number): Promise<number> {
  const { rows } = await db.query<{ seq: string }>('SELECT seq FROM audit_log WHERE occurred_at >= $1::timestamptz ORDER BY occurred_at LIMIT 1', [
    new Date(sinceMs).toISOString(),
  ]);
  return rows[0] === undefined ? Number.MAX_SAFE_INTEGER : Number(rows[0].seq) - 1;
}
