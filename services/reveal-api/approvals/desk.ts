import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { AuditUnavailableError, type AuditEntry } from '../../../lib/audit/entry.js';
import type { Principal } from '../auth/token-verifier.js';
import { budgetHeaders, exhaustedMessage, limitsFor, retryAfterSeconds } from '../budget/standing.js';
import { countsReason, outcomeOf, type Attempt, type Auditor } from '../http/auditor.js';
import { BudgetExhaustedError, ConflictError, HttpError, NotFoundError } from '../http/errors.js';
import type { RevealMetrics } from '../metrics.js';
import type { Policy } from '../policy/policy.js';
import { parseRequested, resolveTokens, type RevealResult } from '../routes/reveal-results.js';
import type { Vault } from '../vault/vault.js';
import type { ApprovalNotifier } from './notifier.js';
import {
  approversInChain,
  claimExpired,
  countOpen,
  insertRequest,
  isPastExpiry,
  lockRequest,
  markCollected,
  markExpired,
  recordApproval,
  recordDenial,
  type RevealRequest,
} from './store.js';
import { withTransaction } from '../../../db/transaction.js';

export interface ApprovalDeskDeps {
  pool: pg.Pool;
  policy: Policy;
  vault: Vault;
  auditor: Auditor;
  metrics: RevealMetrics;
  notify: ApprovalNotifier;
  logger: FastifyBaseLogger;
}

export type Decision = 'approve' | 'deny';

/** Open (pending or approved) requests one requester may have: approvers are not to be flooded. */
export const MAX_OPEN_REQUESTS = 20;

export interface Collected {
  request: RevealRequest;
  results: RevealResult[];
  headers: Record<string, string>;
}

/** What the step's own audit row says, and the error the caller gets once it is committed. */
interface Refusal {
  attempt: Attempt;
  error: HttpError;
}

/**
 * Four-eyes reveals: a request (tokens, purpose, ticket) waits for approvers who are not the
 * requester; the requester collects the values once, within the ttl. Every step changes the
 * request and writes its audit row in one transaction (request_id = the reveal request's id),
 * so the chain holds requested, approved, denied, collected and expired, and refusals too.
 */
export class ApprovalDesk {
  constructor(private readonly deps: ApprovalDeskDeps) {}

  /** Stores the request with its `reveal.request` row; decrypts nothing. */
  async request(request: FastifyRequest, principal: Principal, input: { tokens: string[]; fieldCounts: Record<string, number>; purpose: string; ticket: string | null }): Promise<RevealRequest> {
    const { policy } = this.deps;
    const id = randomUUID();
    const created = await this.audited<RevealRequest>(request, async (client) => {
      if ((await countOpen(client, principal.sub)) >= MAX_OPEN_REQUESTS) {
        return {
          attempt: { action: 'reveal.request', outcome: 'rate_limited', reason: 'too_many_open_requests', tokens: input.tokens, fieldCounts: input.fieldCounts, purpose: input.purpose, ticket: input.ticket },
          error: new HttpError(429, 'too_many_open_requests', `you already have ${MAX_OPEN_REQUESTS} reveal requests waiting for approval or collection; collect or let them expire first`, {
            headers: { 'retry-after': '60' },
          }),
        };
      }
      const stored = await insertRequest(
        client,
        { id, requester: principal.sub, roles: [...principal.roles], ...input, approvalsRequired: policy.approval.approvers_required },
        policy.approval.ttl_seconds,
      );
      const attempt: Attempt = {
        action: 'reveal.request',
        requestId: id,
        outcome: 'pending',
        reason: `pending_approval approvals_required=${stored.approvalsRequired}`,
        tokens: input.tokens,
        fieldCounts: input.fieldCounts,
        purpose: input.purpose,
        ticket: input.ticket,
      };
      return { value: stored, attempt };
    });
    this.deps.metrics.approvalSteps.inc({ step: 'requested' });
    this.deps.notify({
      event: 'reveal_request.created',
      id,
      requester: created.requester,
      purpose: created.purpose,
      ticket: created.ticket,
      field_counts: created.fieldCounts,
      expires_at: created.expiresAt.toISOString(),
    });
    return created;
  }

  /** Approves or denies; refusals (self-approval, not an approver, not pending) are audited too. */
  async decide(request: FastifyRequest, principal: Principal, id: string, decision: Decision, reason: string): Promise<RevealRequest> {
    const action = decision === 'approve' ? 'approval.approve' : 'approval.deny';
    const refused = (code: string, error: HttpError, stored?: RevealRequest): Refusal => ({ attempt: this.stepAttempt(action, id, 'denied', code, stored), error });
    return this.audited(request, async (client) => {
      const stored = await lockRequest(client, id);
      if (stored === undefined) return refused('no_such_request', new NotFoundError('no such reveal request'));
      if (stored.requester === principal.sub) {
        return refused('self_approval', new HttpError(403, 'self_approval', 'you cannot approve or deny your own reveal request'), stored);
      }
      if ((stored.status === 'pending' || stored.status === 'approved') && (await isPastExpiry(client, stored))) {
        await this.expire(client, stored);
        return refused('request_expired', new HttpError(410, 'request_expired', 'this reveal request has expired'), stored);
      }
      if (stored.status !== 'pending') {
        return refused(`request_${stored.status}`, new ConflictError('request_not_pending', `this reveal request is ${stored.status}, not pending`), stored);
      }
      if (decision === 'deny') {
        await recordDenial(client, id, principal.sub, reason);
        this.deps.metrics.approvalSteps.inc({ step: 'denied' });
        return { value: { ...stored, status: 'denied' as const }, attempt: { ...this.stepAttempt(action, id, 'allowed', reason, stored) } };
      }
      if (stored.approvals.some((approval) => approval.approver === principal.sub)) {
        return refused('already_approved_by_actor', new ConflictError('already_approved', 'you already approved this request; another approver is needed'), stored);
      }
      const approvals = [...stored.approvals, { approver: principal.sub, reason, at: new Date().toISOString() }];
      const approved = approvals.length >= stored.approvalsRequired;
      const updated = await recordApproval(client, id, approvals, approved, this.deps.policy.approval.ttl_seconds);
      this.deps.metrics.approvalSteps.inc({ step: approved ? 'approved' : 'approved_partially' });
      return { value: updated, attempt: this.stepAttempt(action, id, 'allowed', reason, stored) };
    });
  }

  /**
   * The requester's one collection of an approved request: the approvals are re-counted from
   * the audit chain, the values draw on the requester's budgets, and the `reveal.collect` row
   * commits with the status change before any value is returned.
   */
  async collect(request: FastifyRequest, principal: Principal, id: string): Promise<Collected | RevealRequest> {
    const action = 'reveal.collect';
    const refused = (code: string, error: HttpError, stored?: RevealRequest): Refusal => ({ attempt: this.stepAttempt(action, id, 'denied', code, stored), error });
    return this.audited<Collected | RevealRequest>(request, async (client) => {
      const stored = await lockRequest(client, id);
      // Someone else's request answers like a missing one: ids are not a way to learn about others' cases.
      if (stored === undefined) return refused('no_such_request', new NotFoundError('no such reveal request'));
      if (stored.requester !== principal.sub) return refused('not_requester', new NotFoundError('no such reveal request'), stored);
      if ((stored.status === 'pending' || stored.status === 'approved') && (await isPastExpiry(client, stored))) {
        await this.expire(client, stored);
        return refused('request_expired', new HttpError(410, 'request_expired', 'this reveal request has expired; nothing was revealed'), stored);
      }
      switch (stored.status) {
        case 'pending':
          // A status poll reveals nothing and writes nothing.
          return { value: stored, attempt: undefined };
        case 'denied':
          return refused('request_denied', new HttpError(403, 'request_denied', `this reveal request was denied: ${stored.decisionReason ?? ''}`.trim()), stored);
        case 'collected':
          return refused('already_collected', new ConflictError('already_collected', 'this reveal request was already collected; values are handed out once'), stored);
        case 'expired':
          return refused('request_expired', new HttpError(410, 'request_expired', 'this reveal request has expired; nothing was revealed'), stored);
        case 'approved':
          break;
      }
      const approvers = (await approversInChain(client, id)).filter((approver) => approver !== stored.requester);
      if (approvers.length < stored.approvalsRequired) {
        return refused('approval_not_in_audit_log', new ConflictError('approval_unverified', 'the approvals of this request are not in the audit log; nothing was revealed'), stored);
      }
      const permissions = this.deps.policy.permissionsFor(principal.roles);
      const resolved = await resolveTokens(this.deps.vault, permissions.reveal, parseRequested(stored.tokens));
      const limits = limitsFor(permissions, false);
      const charge = await this.deps.auditor.chargeWithin(client, { actor: principal.sub, amount: resolved.counts.revealed, limits });
      if (!charge.granted && charge.exhausted !== undefined) {
        this.deps.metrics.budgetExhausted.inc({ budget: charge.exhausted.budget });
        const message = exhaustedMessage(charge.exhausted, resolved.counts.revealed);
        return {
          attempt: this.stepAttempt(action, id, 'rate_limited', `budget_exhausted budget=${charge.exhausted.budget} remaining=${charge.exhausted.remaining}`, stored),
          error: new BudgetExhaustedError(message, { ...budgetHeaders(charge.standings), 'retry-after': String(retryAfterSeconds(charge.exhausted)) }),
        };
      }
      await markCollected(client, id);
      this.deps.metrics.approvalSteps.inc({ step: 'collected' });
      for (const [field, count] of Object.entries(resolved.fieldCounts)) {
        this.deps.metrics.revealedValues.inc({ field, redaction: permissions.reveal[field as keyof typeof permissions.reveal] === 'plain' ? 'none' : 'masked' }, count);
      }
      const outcome = outcomeOf({
        permitted: resolved.results.length - resolved.counts.forbidden - resolved.counts.not_a_token,
        forbidden: resolved.counts.forbidden,
        invalid: resolved.counts.not_a_token,
      });
      return {
        value: { request: { ...stored, status: 'collected' as const }, results: resolved.results, headers: budgetHeaders(charge.standings) },
        attempt: { ...this.stepAttempt(action, id, outcome, countsReason(resolved.counts), stored), fieldCounts: resolved.fieldCounts },
      };
    });
  }

  /** Marks requests past their expiry as expired, each with its `reveal.expire` row. Returns how many. */
  async expireDue(limit = 100): Promise<number> {
    return withTransaction(this.deps.pool, async (client) => {
      const expired = await claimExpired(client, limit);
      if (expired.length > 0) await this.deps.auditor.insertWithin(client, expired.map((stored) => this.expiryEntry(stored)));
      this.deps.metrics.approvalSteps.inc({ step: 'expired' }, expired.length);
      return expired.length;
    });
  }

  private async expire(client: pg.PoolClient, stored: RevealRequest): Promise<void> {
    await markExpired(client, stored.id);
    await this.deps.auditor.insertWithin(client, this.expiryEntry(stored));
    this.deps.metrics.approvalSteps.inc({ step: 'expired' });
  }

  /** Expiry is the system's doing: no actor; the request's purpose, ticket and tokens. */
  private expiryEntry(stored: RevealRequest): AuditEntry {
    return {
      action: 'reveal.expire',
      actor: null,
      roles: [],
      clientAddress: null,
      requestId: stored.id,
      purpose: stored.purpose,
      ticket: stored.ticket,
      tokens: stored.tokens,
      fieldCounts: stored.fieldCounts,
      outcome: 'expired',
      reason: `request_expired requester=${stored.requester} status_was=${stored.status}`,
    };
  }

  private stepAttempt(action: string, id: string, outcome: Attempt['outcome'], reason: string, stored?: RevealRequest): Attempt {
    return {
      action,
      requestId: id,
      outcome,
      reason,
      tokens: stored?.tokens ?? [],
      fieldCounts: stored?.fieldCounts ?? {},
      purpose: stored?.purpose ?? null,
      ticket: stored?.ticket ?? null,
    };
  }

  /**
   * One transaction: the step's changes and its audit row commit together (a refusal commits
   * its row, then its error is thrown). Nothing is returned without its row committed.
   */
  private async audited<T>(request: FastifyRequest, work: (client: pg.PoolClient) => Promise<{ value: T; attempt: Attempt | undefined } | Refusal>): Promise<T> {
    let outcome: { value: T; attempt: Attempt | undefined } | Refusal;
    let written: Attempt | undefined;
    try {
      outcome = await withTransaction(this.deps.pool, async (client) => {
        const result = await work(client);
        written = result.attempt;
        if (written !== undefined) {
          await this.deps.auditor.recordWithin(client, request, written);
        }
        return result;
      });
    } catch (error) {
      // The transaction rolled back: whatever the step wrote, its row included, is gone.
      request.audited = error instanceof AuditUnavailableError;
      throw error;
    }
    if (written !== undefined) this.deps.auditor.committedWithin(request, written);
    else request.audited = true;
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  }
}
