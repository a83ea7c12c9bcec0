import type { Permissions } from '../policy/policy.js';
import { BUDGET_WINDOWS, type BudgetLimit, type BudgetStanding, type ChargeDecision } from '../../../lib/budget/ledger.js';

/** The budgets a reveal draws on: the windowed ones, or only the break-glass one. */
export function limitsFor(permissions: Permissions, breakGlass: boolean): BudgetLimit[] {
  if (breakGlass) return permissions.breakGlassPerDay === undefined ? [] : [{ budget: 'break_glass', limit: permissions.breakGlassPerDay }];
  return BUDGET_WINDOWS.flatMap((window) => {
    const limit = permissions.budget[window];
    return limit === undefined ? [] : [{ budget: window, limit }];
  });
}

const HEADER_NAME: Record<BudgetStanding['budget'], string> = { minute: 'Minute', hour: 'Hour', day: 'Day', break_glass: 'Break-Glass' };

/**
 * `X-Budget-Limit-<Window>` / `X-Budget-Remaining-<Window>` / `X-Budget-Reset-<Window>`
 * (seconds until the window ends) for each budget the reveal drew on.
 */
export function budgetHeaders(standings: readonly BudgetStanding[], nowMs = Date.now()): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const standing of standings) {
    const name = HEADER_NAME[standing.budget];
    headers[`x-budget-limit-${name.toLowerCase()}`] = String(standing.limit);
    headers[`x-budget-remaining-${name.toLowerCase()}`] = String(standing.remaining);
    headers[`x-budget-reset-${name.toLowerCase()}`] = String(Math.max(0, Math.ceil((standing.resetAt - nowMs) / 1000)));
  }
  return headers;
}

export function retryAfterSeconds(standing: BudgetStanding, nowMs = Date.now()): number {
  return Math.max(1, Math.ceil((standing.resetAt - nowMs) / 1000));
}

export function exhaustedMessage(standing: BudgetStanding, amount: number, nowMs = Date.now()): string {
  const window = standing.budget === 'break_glass' ? 'break-glass budget (per day)' : `budget per ${standing.budget}`;
  return `this reveal of ${amount} value(s) exceeds your ${window}: ${standing.remaining} of ${standing.limit} left, resets in ${retryAfterSeconds(standing, nowMs)} s; nothing was revealed`;
}

/**
 * Remembers, per replica, budgets a caller has used up until their window resets, so a
 * caller hammering an exhausted budget is refused without a transaction under the chain lock.
 */
export class ExhaustedBudgets {
  private readonly until = new Map<string, BudgetStanding>();

  note(actor: string, decision: ChargeDecision): void {
    for (const standing of decision.standings) if (standing.remaining === 0) this.until.set(JSON.stringify([actor, standing.budget]), standing);
    if (this.until.size > 50_000) this.prune(Date.now());
  }

  /** A budget among `limits` known to have nothing left right now. */
  exhausted(actor: string, limits: readonly BudgetLimit[], nowMs = Date.now()): BudgetStanding | undefined {
    for (const limit of limits) {
      const name = JSON.stringify([actor, limit.budget]);
      const standing = this.until.get(name);
      if (standing === undefined) continue;
      if (standing.resetAt <= nowMs || standing.limit !== limit.limit) this.until.delete(name);
      else return standing;
    }
    return undefined;
  }

  private prune(nowMs: number): void {
    for (const [name, standing] of this.until) if (standing.resetAt <= nowMs) this.until.delete(name);
  }
}
