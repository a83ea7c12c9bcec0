import type { FastifyRequest } from 'fastify';
import { parseToken } from '../../../lib/crypto/tokens.js';
import type pg from 'pg';
import { withTransaction } from '../../../db/transaction.js';
import { AuditUnavailableError, type AuditEntry } from '../../../lib/audit/entry.js';
import { insertAudit, type InsertAuditOptions } from '../../../lib/audit/insert.js';
import { chargeBudget, type BudgetedAuditWriter } from '../../../lib/budget/charges.js';
import type { Charge, ChargeDecision } from '../../../lib/budget/ledger.js';
import type { RevealMetrics } from '../metrics.js';

export type AuditAction = 'reveal' | 'tokenize' | 'erase' | 'erase.preview' | 'audit_read' | 'audit_verify' | 'audit_export' | 'approval.decide' | 'reveal.collect' | 'person.access' | 'person.erase';

/**
 * Every outcome an audit row can carry (docs/audit-format.md lists them). allowed: everything
 * asked was permitted; partial: some items forbidden or invalid; pending: waiting for approval;
 * expired: a request nobody decided in time; the rest are refusals (failed: a 5xx).
 */
export const AUDIT_OUTCOMES = ['allowed', 'partial', 'pending', 'denied', 'expired', 'invalid', 'unauthenticated', 'rate_limited', 'failed'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** How the items of one request (tokens to reveal or erase, values to tokenize) were judged. */
export interface ItemTally {
  /** Permitted and acted on (revealed, erased, tokenized; also not_found: the attempt was allowed). */
  permitted: number;
  /** Well-formed, but the caller's roles do not allow this field. */
  forbidden: number;
  /** Not a well-formed token or value: nothing could be done with it. */
  invalid: number;
}

/**
 * The one rule for an attempt's outcome, for reveal, erase and tokenize alike: all permitted →
 * allowed; some → partial; none, and something was forbidden → denied; none because every item
 * was malformed → invalid.
 */
export function outcomeOf(tally: ItemTally): Extract<AuditOutcome, 'allowed' | 'partial' | 'denied' | 'invalid'> {
  if (tally.permitted === 0) return tally.forbidden > 0 ? 'denied' : 'invalid';
  return tally.forbidden + tally.invalid === 0 ? 'allowed' : 'partial';
}

/** An audit reason from item counts: `revealed=2 not_found=1` (zero counts left out). */
export function countsReason(counts: Readonly<Record<string, number>>): string {
  return Object.entries(counts)
    .filter(([, count]) => count > 0)
    .map(([name, count]) => `${name}=${count}`)
    .join(' ');
}

export interface Attempt {
  /** Defaults to the route's action; governance steps name their own (reveal.request, approval.approve...). */
  action?: string;
  /** Defaults to the HTTP request id; approval steps carry the reveal request's id instead. */
  requestId?: string;
  outcome: AuditOutcome;
  reason: string | null;
  /** Tokens only, never values. Defaults to the well-formed tokens found in the request body. */
  tokens?: readonly string[];
  fieldCounts?: Readonly<Record<string, number>>;
  purpose?: string | null;
  ticket?: string | null;
}

const NOTHING_SENT = { purpose: null, ticket: null, tokens: [] };

const MAX_PURPOSE = 500;
const MAX_TICKET = 128;
const MAX_TOKENS = 100;

/** Turns a request and what happened to it into one audit row, and writes it (committed) first. */
export class Auditor {
  constructor(
    private readonly writer: BudgetedAuditWriter,
    private readonly metrics: RevealMetrics,
    /** For rows that join a caller's transaction (recordWithin). */
    private readonly insertOptions: InsertAuditOptions = {},
  ) {}

  /**
   * The audit row of an attempt. Without a verified identity nothing the caller sent is kept
   * (no tokens, purpose or ticket: an anonymous flood must not write its bodies into a log
   * nobody may delete from); the refusal's reason describes it by sizes and a digest instead.
   */
  entryFor(request: FastifyRequest, attempt: Attempt): AuditEntry {
    const body = request.principal === undefined ? NOTHING_SENT : bodyFields(request.body);
    return {
      action: attempt.action ?? actionOf(request) ?? 'unknown',
      actor: request.principal?.sub ?? null,
      roles: request.principal?.roles ?? [],
      clientAddress: request.ip,
      requestId: attempt.requestId ?? request.id,
      purpose: attempt.purpose !== undefined && request.principal !== undefined ? attempt.purpose : body.purpose,
      ticket: attempt.ticket !== undefined && request.principal !== undefined ? attempt.ticket : body.ticket,
      tokens: request.principal === undefined ? [] : (attempt.tokens ?? body.tokens),
      fieldCounts: attempt.fieldCounts ?? {},
      outcome: attempt.outcome,
      reason: attempt.reason,
    };
  }

  /**
   * Resolves with the row's seq once it is committed (also kept as request.auditSeq); rejects
   * with AuditUnavailableError (the caller must then reveal nothing).
   */
  async record(request: FastifyRequest, attempt: Attempt): Promise<number> {
    const action = attempt.action ?? actionOf(request) ?? 'unknown';
    request.audited = true;
    let seq: number;
    try {
      seq = await this.writer.append(this.entryFor(request, attempt));
    } catch (error) {
      this.metrics.requests.inc({ action, outcome: 'audit_failed' });
      throw error;
    }
    request.auditSeq = seq;
    this.metrics.requests.inc({ action, outcome: attempt.outcome });
    return seq;
  }

  /**
   * Writes `attempt` if `charge` fits the caller's budgets, `refused(decision)` otherwise; both
   * decided and committed in one transaction. Rejects with AuditUnavailableError.
   */
  async recordCharged(request: FastifyRequest, attempt: Attempt, charge: Charge, refused: (decision: ChargeDecision) => Attempt): Promise<ChargeDecision> {
    request.audited = true;
    let final = attempt;
    try {
      const { seq, decision } = await this.writer.appendCharged(this.entryFor(request, attempt), {
        charge,
        refused: (decision) => this.entryFor(request, (final = refused(decision))),
      });
      request.auditSeq = seq;
      this.metrics.requests.inc({ action: final.action ?? actionOf(request) ?? 'unknown', outcome: final.outcome });
      return decision ?? { granted: true, standings: [] };
    } catch (error) {
      this.metrics.requests.inc({ action: attempt.action ?? actionOf(request) ?? 'unknown', outcome: 'audit_failed' });
      throw error;
    }
  }

  /**
   * Appends the attempt's row inside the caller's open transaction, so it commits or rolls back
   * with the change it records (erase, approval steps). Call committedWithin with the seq it
   * returns after the COMMIT. Rejects with AuditUnavailableError: the caller's transaction must
   * then roll back.
   */
  async recordWithin(client: pg.PoolClient, request: FastifyRequest, attempt: Attempt): Promise<number> {
    const [seq] = await this.insertWithin(client, this.entryFor(request, attempt)).catch((error: unknown) => {
      request.audited = true;
      throw error;
    });
    return seq!;
  }

  /**
   * One transaction for a change and the audit row of the attempt `work` returns: they commit
   * together or not at all (erase, person erase). A row that cannot be written, or a COMMIT that
   * fails after it, rejects with AuditUnavailableError and nothing changed; the attempt counts
   * once committed.
   */
  async commitWithRow<T>(pool: pg.Pool, request: FastifyRequest, work: (client: pg.PoolClient) => Promise<{ attempt: Attempt; value: T }>): Promise<T> {
    let rowWritten = false;
    const { attempt, value, seq } = await withTransaction(pool, async (client) => {
      const done = await work(client);
      const seq = await this.recordWithin(client, request, done.attempt);
      rowWritten = true;
      return { ...done, seq };
    }).catch((cause: unknown) => {
      if (!rowWritten) throw cause;
      // The COMMIT failed: the change and its audit row are undone together.
      request.audited = true;
      throw new AuditUnavailableError({ cause });
    });
    this.committedWithin(request, attempt, seq);
    return value;
  }

  /** Rows not made from a request (expiry sweeps), inside the caller's open transaction: their seqs. Rejects with AuditUnavailableError. */
  async insertWithin(client: pg.PoolClient, entries: AuditEntry | readonly AuditEntry[]): Promise<number[]> {
    try {
      return await insertAudit(client, entries, this.insertOptions);
    } catch (cause) {
      throw new AuditUnavailableError({ cause });
    }
  }

  /** Decides and records a budget charge in the caller's open transaction, under the chain lock; the row follows with recordWithin. */
  chargeWithin(client: pg.PoolClient, charge: Charge): Promise<ChargeDecision> {
    return chargeBudget(client, charge, this.insertOptions);
  }

  /** After the COMMIT of a transaction that recordWithin joined (`seq`: what it returned): the attempt counts. */
  committedWithin(request: FastifyRequest, attempt: Attempt, seq?: number): void {
    request.audited = true;
    if (seq !== undefined) request.auditSeq = seq;
    this.metrics.requests.inc({ action: attempt.action ?? actionOf(request) ?? 'unknown', outcome: attempt.outcome });
  }
}

/** The seq of the request's committed audit row, for a response body (routes call it after recording). */
export function auditSeqOf(request: FastifyRequest): number {
  if (request.auditSeq === undefined) throw new Error('no audit row committed for this request yet');
  return request.auditSeq;
}

export function actionOf(request: FastifyRequest): AuditAction | undefined {
  return request.routeOptions.config.auditAction;
}

/**
 * What an unvalidated body says about the attempt, for refusals (400, 401, 429...). Strings
 * that are not well-formed tokens are left out: a caller pasting a raw IP into `tokens` must
 * not put it into the audit log.
 */
function bodyFields(body: unknown): { purpose: string | null; ticket: string | null; tokens: string[] } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return { purpose: null, ticket: null, tokens: [] };
  const record = body as Record<string, unknown>;
  const purpose = typeof record.purpose === 'string' ? record.purpose.trim().slice(0, MAX_PURPOSE) : null;
  const ticket = typeof record.ticket === 'string' ? record.ticket.trim().slice(0, MAX_TICKET) : null;
  const tokens = Array.isArray(record.tokens)
    ? [...new Set(record.tokens.filter((token): token is string => typeof token === 'string' && parseToken(token) !== undefined))].slice(0, MAX_TOKENS)
    : [];
  return { purpose, ticket, tokens };
}
