import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import type pg from 'pg';
import type { AuditEntry } from '../../../lib/audit/entry.js';
import type { Principal } from '../auth/jwt-verifier.js';
import { budgetHeaders, limitsFor } from '../budget/standing.js';
import type { Attempt, AuditedStep, AuditTransaction, Auditor } from '../audit/auditor.js';
import { ConflictError, HttpError, NotFoundError } from '../http/errors.js';
import type { RevealMetrics } from '../metrics.js';
import type { Policy } from '../policy/policy.js';
import type { Resolution, Resolved } from '../reveal/resolve.js';
import { revealAttemptOf, type Reveals } from '../reveal/reveal.js';
import { triageTokens } from '../reveal/triage.js';
import type { ApprovalNotifier } from './notifier.js';
import { proveApproval, type ApprovalProof } from './chain-proof.js';
import {
  claimExpired,
  countOpen,
  insertRequest,
  isPastExpiry,
  lockRequest,
  lockRequester,
  markCollected,
  markExpired,
  markPending,
  readChainSteps,
  readRequest,
  recordApproval,
  recordDenial,
  type RevealRequest,
} from './store.js';

export interface ApprovalDeskDeps {
  pool: pg.Pool;
  policy: Policy;
  /** Collection reveals the approved values through the reveal use case. */
  reveals: Reveals;
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
  results: Resolution[];
  headers: Record<string, string>;
}

/** Values decrypted before collection's transaction, from the tokens the audit chain records for the request. */
interface Prepared {
  tokens: string[];
  resolved: Resolved;
}

/** Collection found the request changed since its values were read: read them again. */
const CHANGED = Symbol('changed');

function sameTokens(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((token, index) => token === b[index]);
}

/** What the step's own audit row says, and the error the caller gets once it is committed. */
interface Refusal {
  attempt: Attempt;
  error: Error;
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
    const created = await this.deps.auditor.commit<RevealRequest>(request, async ({ client }) => {
      // Count and insert under the requester's lock: concurrent requests cannot both take the last slot.
      await lockRequester(client, principal.sub);
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
    return this.deps.auditor.commit(request, async (transaction): Promise<AuditedStep<RevealRequest>> => {
      const { client } = transaction;
      const stored = await lockRequest(client, id);
      if (stored === undefined) return refused('no_such_request', new NotFoundError('no such reveal request'));
      if (stored.requester === principal.sub) {
        return refused('self_approval', new HttpError(403, 'self_approval', 'you cannot approve or deny your own reveal request'), stored);
      }
      if ((stored.status === 'pending' || stored.status === 'approved') && (await isPastExpiry(client, stored))) {
        await this.expire(transaction, stored);
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
      const required = this.required(stored);
      const approved = approvals.length >= required;
      const updated = await recordApproval(client, id, approvals, approved, this.deps.policy.approval.ttl_seconds);
      this.deps.metrics.approvalSteps.inc({ step: approved ? 'approved' : 'approved_partially' });
      return { value: { ...updated, approvalsRequired: required }, attempt: this.stepAttempt(action, id, 'allowed', reason, stored) };
    });
  }

  /**
   * The requester's one collection of an approved request. What it relies on comes from the
   * audit chain, not from the row an administrator could edit (approvals/chain-proof.ts); the
   * values draw on the requester's budgets, and the `reveal.collect` row commits with the
   * status change before any value is returned.
   *
   * Two steps, so no pooled connection is ever held while waiting for another: the vault is
   * read (and the values decrypted) before the transaction, from the tokens the chain records;
   * the transaction then locks the request, proves it again and commits. If the request
   * changed in between, the first step is repeated.
   */
  async collect(request: FastifyRequest, principal: Principal, id: string): Promise<Collected | RevealRequest> {
    for (let attempt = 1; ; attempt += 1) {
      const prepared = await this.prepareCollection(principal, id);
      const outcome = await this.deps.auditor.commit<Collected | RevealRequest | typeof CHANGED>(request, (transaction) => this.collectWithin(transaction, request, principal, id, prepared));
      if (outcome !== CHANGED) return outcome;
      if (attempt >= 3) throw new HttpError(503, 'unavailable', 'this reveal request kept changing while it was being collected; nothing was revealed, retry', { headers: { 'retry-after': '1' } });
    }
  }

  /** Outside any transaction: an approved request the chain backs gets its values decrypted; anything else is left to the transaction. */
  private async prepareCollection(principal: Principal, id: string): Promise<Prepared | undefined> {
    const stored = await readRequest(this.deps.pool, id);
    if (stored === undefined || stored.requester !== principal.sub || stored.status !== 'approved') return undefined;
    const proof = proveApproval(stored, await readChainSteps(this.deps.pool, id), this.deps.policy.approval.approvers_required);
    if (!proof.ok) return undefined;
    const permissions = this.deps.policy.permissionsFor(principal.roles);
    return { tokens: proof.tokens, resolved: await this.deps.reveals.resolve(triageTokens(proof.tokens, permissions.reveal)) };
  }

  /** Inside the transaction, on its one connection: lock, check, prove, charge, mark collected. */
  private async collectWithin(
    transaction: AuditTransaction,
    request: FastifyRequest,
    principal: Principal,
    id: string,
    prepared: Prepared | undefined,
  ): Promise<AuditedStep<Collected | RevealRequest | typeof CHANGED>> {
    const { client } = transaction;
    const action = 'reveal.collect';
    const refused = (code: string, error: HttpError, stored?: RevealRequest): Refusal => ({ attempt: this.stepAttempt(action, id, 'denied', code, stored), error });
    const stored = await lockRequest(client, id);
    // Someone else's request answers like a missing one: ids are not a way to learn about others' cases.
    if (stored === undefined) return refused('no_such_request', new NotFoundError('no such reveal request'));
    if (stored.requester !== principal.sub) return refused('not_requester', new NotFoundError('no such reveal request'), stored);
    if ((stored.status === 'pending' || stored.status === 'approved') && (await isPastExpiry(client, stored))) {
      await this.expire(transaction, stored);
      return refused('request_expired', new HttpError(410, 'request_expired', 'this reveal request has expired; nothing was revealed'), stored);
    }
    switch (stored.status) {
      case 'pending':
        // A status poll reveals nothing and writes nothing.
        return { value: { ...stored, approvalsRequired: this.required(stored) }, attempt: undefined };
      case 'denied':
        return refused('request_denied', new HttpError(403, 'request_denied', `this reveal request was denied: ${stored.decisionReason ?? ''}`.trim()), stored);
      case 'collected':
        return refused('already_collected', new ConflictError('already_collected', 'this reveal request was already collected; values are handed out once'), stored);
      case 'expired':
        return refused('request_expired', new HttpError(410, 'request_expired', 'this reveal request has expired; nothing was revealed'), stored);
      case 'approved':
        break;
    }
    const proof = proveApproval(stored, await readChainSteps(client, id), this.deps.policy.approval.approvers_required);
    if (!proof.ok && proof.kind === 'unverified') {
      this.deps.metrics.approvalUnverified.inc({ reason: proof.detail.split(' ')[0] ?? proof.detail });
      request.log.error(
        { request_id: id, requester: stored.requester, detail: proof.detail },
        'approval_unverified: the reveal request row does not match the audit chain (edited or forged with database rights); nothing was revealed',
      );
      return refused(
        `approval_unverified ${proof.detail}`,
        new ConflictError('approval_unverified', 'this reveal request does not match its record in the audit log; nothing was revealed and the refusal is reported'),
        stored,
      );
    }
    if (!proof.ok) {
      // The policy now asks for more approvers than when the request was made: back to the approvers.
      await markPending(client, id);
      return refused(
        `more_approvals_required approvals=${proof.approvals} required=${proof.required}`,
        new ConflictError('more_approvals_required', `the approval policy now requires ${proof.required} distinct approvers and this request has ${proof.approvals}; it is pending again`),
        stored,
      );
    }
    if (await this.pastChainExpiry(client, proof)) {
      await this.expire(transaction, stored);
      return refused('request_expired', new HttpError(410, 'request_expired', 'this reveal request has expired; nothing was revealed'), stored);
    }
    // Decrypted before the transaction from the tokens the chain recorded; if they are not these, start again.
    if (prepared === undefined || !sameTokens(prepared.tokens, proof.tokens)) return { value: CHANGED, attempt: undefined };

    const { resolved } = prepared;
    const permissions = this.deps.policy.permissionsFor(principal.roles);
    const { outcome, reason, fieldCounts } = revealAttemptOf(resolved);
    // The requester's budgets are charged in this transaction; the values count once it commits.
    const step = await this.deps.reveals.revealWithin(transaction, {
      grants: permissions.reveal,
      revealed: resolved.counts.revealed,
      attempt: { ...this.stepAttempt(action, id, outcome, reason, stored), fieldCounts },
      budget: {
        actor: principal.sub,
        limits: limitsFor(permissions, false),
        refused: (exhausted) => this.stepAttempt(action, id, 'rate_limited', `budget_exhausted budget=${exhausted?.budget ?? 'unknown'} remaining=${exhausted?.remaining ?? 0}`, stored),
      },
    });
    if ('error' in step) return step;
    await markCollected(client, id);
    this.deps.metrics.approvalSteps.inc({ step: 'collected' });
    return {
      value: { request: { ...stored, status: 'collected' as const }, results: resolved.resolutions, headers: budgetHeaders(step.standings) },
      attempt: step.attempt,
    };
  }

  /**
   * An approved request can be collected for the ttl from the approval that completed it, as
   * the chain dates it: a stored expiry pushed later by an administrator does not extend it.
   */
  private async pastChainExpiry(client: pg.PoolClient, proof: ApprovalProof): Promise<boolean> {
    const { rows } = await client.query<{ past: boolean }>('SELECT $1::timestamptz + make_interval(secs => $2) <= now() AS past', [
      proof.approvedAt,
      this.deps.policy.approval.ttl_seconds,
    ]);
    return rows[0]?.past === true;
  }

  /** Approvals a request needs: what was required when it was made, or more if the policy now asks for more. */
  required(stored: Pick<RevealRequest, 'approvalsRequired'>): number {
    return Math.max(stored.approvalsRequired, this.deps.policy.approval.approvers_required);
  }

  /** Marks requests past their expiry as expired, each with its `reveal.expire` row. Returns how many. */
  async expireDue(limit = 100): Promise<number> {
    return this.deps.auditor.commit(undefined, async (transaction) => {
      const expired = await claimExpired(transaction.client, limit);
      if (expired.length > 0) await transaction.add(expired.map((stored) => this.expiryEntry(stored)));
      this.deps.metrics.approvalSteps.inc({ step: 'expired' }, expired.length);
      return { value: expired.length, attempt: undefined };
    });
  }

  /** Inside a step's transaction: the request expires, with its own `reveal.expire` row beside the step's. */
  private async expire(transaction: AuditTransaction, stored: RevealRequest): Promise<void> {
    await markExpired(transaction.client, stored.id);
    await transaction.add(this.expiryEntry(stored));
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
}
