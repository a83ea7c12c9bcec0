import type { FastifyBaseLogger } from 'fastify';
import type pg from 'pg';
import type { AuditEntry } from '../../../lib/audit/entry.js';
import { DEFAULT_LOCK_TIMEOUT_MS, lockChain } from '../../../lib/audit/sql.js';
import { READ_NOW } from '../../../lib/budget/ledger.js';
import { ChainUsage, raiseUsage, type BudgetMismatch, type LimitsOf } from '../../../lib/budget/reconcile.js';
import type { Auditor } from '../audit/auditor.js';

// Arbitrary constant: elects the one replica that reconciles budgets in a round.
export const BUDGET_RECONCILE_LOCK_ID = 7_468_025;

/** The actor of the rows reconciliation writes. */
export const RECONCILER_ACTOR = 'system:budget';
export const RECONCILE_ACTION = 'budget.reconcile';

export interface ReconcilerOptions {
  /** 0: no timer (rounds only on demand, e.g. GET /audit/verify). */
  intervalMs: number;
  lockTimeoutMs?: number;
  logger: FastifyBaseLogger;
  onMismatch?: (mismatch: BudgetMismatch) => void;
}

export type ReconcileOutcome = { status: 'not-leader' } | { status: 'reconciled'; checked: number; mismatches: BudgetMismatch[] };

/** Mismatches the chain records (budget.reconcile rows), newest first. */
export interface RecordedMismatches {
  count: number;
  latest: { seq: number; occurred_at: string; reason: string }[];
}

/**
 * Reconciles budget usage (reveal_budget_usage, which the database owner can edit) against the
 * audit chain (whose field_counts record every value revealed). One replica per round (an
 * advisory lock, like the checkpointer): it reads the charged rows appended since its last round,
 * compares each current window with the table and, where the table is lower, raises it to the
 * chain's count under the chain lock with a `budget.reconcile` row (outcome `mismatch`) in the
 * same transaction, logs at error and counts. Enforcement then uses the larger of the two.
 */
export class BudgetReconciler {
  private readonly usage: ChainUsage;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReconcileOutcome> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    /** Writes the budget.reconcile rows in the transaction that raises the usage. */
    private readonly auditor: Pick<Auditor, 'commit'>,
    limitsOf: LimitsOf,
    private readonly options: ReconcilerOptions,
  ) {
    this.usage = new ChainUsage(limitsOf);
  }

  start(): void {
    if (this.options.intervalMs <= 0 || this.timer !== undefined) return;
    this.timer = setInterval(() => void this.reconcileNow().catch(() => undefined), this.options.intervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /**
   * One round; concurrent callers share it. `wait`: wait for the replica holding the election
   * lock instead of skipping the round (an auditor asking gets an answer, not "not-leader").
   */
  async reconcileNow(options: { wait?: boolean } = {}): Promise<ReconcileOutcome> {
    for (;;) {
      const current = this.running;
      if (current === undefined) break;
      const outcome = await current.catch(() => undefined);
      if (outcome !== undefined && (outcome.status === 'reconciled' || options.wait !== true)) return outcome;
    }
    const round = this.round(options.wait === true).finally(() => (this.running = undefined));
    this.running = round;
    return round;
  }

  /** budget.reconcile rows of the last 24 hours: a repaired table still leaves its record in the chain. */
  async recorded(): Promise<RecordedMismatches> {
    const { rows } = await this.pool.query<{ seq: string; occurred_at: Date; reason: string | null; total: number }>(
      `SELECT seq, occurred_at, reason, count(*) OVER ()::int AS total FROM audit_log
       WHERE actor = $1 AND action = $2 AND occurred_at >= now() - interval '1 day' ORDER BY seq DESC LIMIT 5`,
      [RECONCILER_ACTOR, RECONCILE_ACTION],
    );
    return {
      count: rows[0]?.total ?? 0,
      latest: rows.map((row) => ({ seq: Number(row.seq), occurred_at: row.occurred_at.toISOString(), reason: row.reason ?? '' })),
    };
  }

  private async round(wait: boolean): Promise<ReconcileOutcome> {
    const lockTimeoutMs = this.options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    let outcome: ReconcileOutcome;
    try {
      outcome = await this.auditor.commit(undefined, async ({ client, add }) => {
        const step = (value: ReconcileOutcome) => ({ value, attempt: undefined });
        if (wait) {
          await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.trunc(lockTimeoutMs))}; SELECT pg_advisory_xact_lock(${BUDGET_RECONCILE_LOCK_ID})`);
        } else {
          const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [BUDGET_RECONCILE_LOCK_ID]);
          if (rows[0]?.locked !== true) return step({ status: 'not-leader' });
        }
        const found = await this.compare(client);
        if (found.mismatches.length === 0) return step({ status: 'reconciled', ...found });
        // Every budget change happens under the chain lock, in the transaction of the row that
        // records it; under the lock nothing can be charged meanwhile, so compare once more.
        await client.query(lockChain(lockTimeoutMs));
        const confirmed = await this.compare(client);
        await raiseUsage(client, confirmed.mismatches);
        if (confirmed.mismatches.length > 0) await add(confirmed.mismatches.map(mismatchEntry));
        return step({ status: 'reconciled', ...confirmed });
      });
    } catch (error) {
      this.options.logger.warn({ err: error }, 'budget reconciliation failed; retrying next interval');
      throw error;
    }
    if (outcome.status === 'reconciled') {
      for (const mismatch of outcome.mismatches) {
        this.options.onMismatch?.(mismatch);
        this.options.logger.error(
          { actor: mismatch.actor, budget: mismatch.budget, window_start: new Date(mismatch.windowStart).toISOString(), stored: mismatch.stored, chain: mismatch.chain },
          'budget_mismatch: stored budget usage was below what the audit chain shows (reset with database rights); raised to the chain\'s count',
        );
      }
    }
    return outcome;
  }

  private async compare(client: pg.PoolClient) {
    const { rows } = await client.query<{ now_ms: number }>(READ_NOW);
    const nowMs = Number(rows[0]?.now_ms ?? Date.now());
    await this.usage.catchUp(client, nowMs);
    return this.usage.compare(client, nowMs);
  }
}

function mismatchEntry(mismatch: BudgetMismatch): AuditEntry {
  return {
    action: RECONCILE_ACTION,
    actor: RECONCILER_ACTOR,
    roles: [],
    clientAddress: null,
    requestId: null,
    purpose: null,
    ticket: null,
    tokens: [],
    fieldCounts: {},
    outcome: 'mismatch',
    reason:
      `budget_mismatch budget=${mismatch.budget} window_start=${new Date(mismatch.windowStart).toISOString()} ` +
      `stored=${mismatch.stored} chain=${mismatch.chain} actor=${encodeURIComponent(mismatch.actor)}`,
  };
}
