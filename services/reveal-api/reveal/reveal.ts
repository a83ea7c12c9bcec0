import type { FastifyRequest } from 'fastify';
import { PII_FIELDS, type PiiField } from '../../../lib/crypto/normalize.js';
import type { BudgetLimit, BudgetStanding, ChargeDecision } from '../../../lib/budget/ledger.js';
import { countsReason, outcomeOf, type Attempt, type AuditOutcome, type AuditTransaction, type Auditor } from '../audit/auditor.js';
import { budgetHeaders, exhaustedMessage, retryAfterSeconds, type ExhaustedBudgets } from '../budget/standing.js';
import { BudgetExhaustedError } from '../http/errors.js';
import type { RevealMetrics } from '../metrics.js';
import type { Vault } from '../vault/vault.js';
import { resolve, type Resolved } from './resolve.js';
import type { RevealGrants, Triage } from './triage.js';

export interface RevealsDeps {
  vault: Vault;
  auditor: Auditor;
  metrics: RevealMetrics;
  /** Budgets known to be used up (per replica), so a caller past them is refused without a transaction. */
  exhaustedBudgets: ExhaustedBudgets;
}

/** One reveal's budgets: what is drawn, and the row written instead when it does not fit. */
export interface RevealBudget {
  actor: string;
  limits: readonly BudgetLimit[];
  /** The attempt recorded when a budget is exhausted (nothing is revealed then). */
  refused: (exhausted: BudgetStanding | undefined) => Attempt;
}

export interface RevealSpec {
  grants: RevealGrants;
  /** Values handed out: what the budgets are charged. */
  revealed: number;
  /** The attempt recorded when the values are revealed; its fieldCounts (values per field) are counted in metrics once committed. */
  attempt: Attempt;
  /** Omitted, or without limits: nothing is charged. */
  budget?: RevealBudget;
}

/** The step a reveal inside a caller's transaction ends with: the attempt to record, or the refusal and its error. */
export type RevealStep = { attempt: Attempt; standings: BudgetStanding[] } | { attempt: Attempt; error: BudgetExhaustedError };

/**
 * Revealing values, the one use case behind POST /reveal, the collection of an approved request
 * and a person's access request: triage (triage.ts) → resolve (decrypt what is permitted) →
 * charge the budgets → the audit row → metrics. The row commits before any value leaves the
 * process: on its own (reveal), or in the caller's transaction (revealWithin).
 */
export class Reveals {
  constructor(private readonly deps: RevealsDeps) {}

  /** Decrypts what the triage permits; nothing is audited or charged yet. */
  resolve(triage: Triage): Promise<Resolved> {
    return resolve(this.deps.vault, triage);
  }

  /** A caller known to be past a budget until its window resets is refused before anything is decrypted (the error handler audits it). */
  refuseIfKnownExhausted(actor: string, limits: readonly BudgetLimit[], asked: number): void {
    const known = this.deps.exhaustedBudgets.exhausted(actor, limits);
    if (known === undefined) return;
    this.deps.metrics.budgetExhausted.inc({ budget: known.budget });
    throw new BudgetExhaustedError(exhaustedMessage(known, asked), { ...budgetHeaders([known]), 'retry-after': String(retryAfterSeconds(known)) });
  }

  /**
   * Charge → audit row → metrics, the row committed on its own (group commit) and the charge
   * decided with it. Resolves with the budgets' standings; rejects with BudgetExhaustedError
   * (its refusal row committed) or AuditUnavailableError (the values must not leave).
   */
  async reveal(request: FastifyRequest, spec: RevealSpec): Promise<BudgetStanding[]> {
    const budget = spec.budget;
    let standings: BudgetStanding[] = [];
    if (budget === undefined || budget.limits.length === 0) {
      await this.deps.auditor.record(request, spec.attempt);
    } else {
      const { decision } = await this.deps.auditor.record(request, spec.attempt, {
        charge: { charge: { actor: budget.actor, amount: spec.revealed, limits: budget.limits }, refused: (refused) => budget.refused(refused.exhausted) },
      });
      this.deps.exhaustedBudgets.note(budget.actor, decision);
      if (!decision.granted && decision.exhausted !== undefined) throw this.exhausted(decision, decision.exhausted, spec.revealed);
      standings = decision.standings;
    }
    this.countRevealed(spec);
    return standings;
  }

  /**
   * Charge → audit row → metrics inside the caller's transaction (Auditor.commit): the charge is
   * decided there, the step's attempt is the row the transaction commits, and the metrics count
   * once it has.
   */
  async revealWithin(transaction: AuditTransaction, spec: RevealSpec & { budget: RevealBudget }): Promise<RevealStep> {
    const { budget } = spec;
    const decision = await transaction.charge({ actor: budget.actor, amount: spec.revealed, limits: budget.limits });
    if (!decision.granted && decision.exhausted !== undefined) {
      return { attempt: budget.refused(decision.exhausted), error: this.exhausted(decision, decision.exhausted, spec.revealed) };
    }
    transaction.afterCommit(() => this.countRevealed(spec));
    return { attempt: spec.attempt, standings: decision.standings };
  }

  private exhausted(decision: ChargeDecision, exhausted: BudgetStanding, asked: number): BudgetExhaustedError {
    this.deps.metrics.budgetExhausted.inc({ budget: exhausted.budget });
    return new BudgetExhaustedError(exhaustedMessage(exhausted, asked), { ...budgetHeaders(decision.standings), 'retry-after': String(retryAfterSeconds(exhausted)) });
  }

  private countRevealed(spec: RevealSpec): void {
    const counts = spec.attempt.fieldCounts ?? {};
    for (const field of PII_FIELDS) {
      const count = counts[field] ?? 0;
      if (count > 0) this.deps.metrics.revealedValues.inc({ field, redaction: spec.grants[field] === 'plain' ? 'none' : 'masked' }, count);
    }
  }
}

/** The outcome and reason of a reveal's attempt, from what became of its tokens. */
export function revealAttemptOf(resolved: Resolved): { outcome: AuditOutcome; reason: string; fieldCounts: Partial<Record<PiiField, number>> } {
  return { outcome: outcomeOf(resolved.triage.tally), reason: countsReason(resolved.counts), fieldCounts: resolved.fieldCounts };
}
