import type { FastifyRequest } from 'fastify';
import { parseToken } from '../../../lib/crypto/tokens.js';
import type pg from 'pg';
import { withTransaction } from '../../../db/transaction.js';
import { AuditUnavailableError, type AuditEntry } from '../../../lib/audit/entry.js';
import { insertAudit, type InsertAuditOptions } from '../../../lib/audit/insert.js';
import { chargeBudget, type BudgetedAuditWriter } from '../../../lib/budget/charges.js';
import type { Charge, ChargeDecision } from '../../../lib/budget/ledger.js';
import type { RevealMetrics } from '../metrics.js';
import type { RefusalSampler } from './refusal-sampler.js';

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

/** A budget drawn by the attempt: decided and committed with its row, in one transaction. */
export interface ChargedAttempt {
  charge: Charge;
  /** The attempt written instead when the charge does not fit (nothing is revealed then). */
  refused: (decision: ChargeDecision) => Attempt;
}

/** A refusal a caller can repeat at will: accounted per key and window (first row, then a summary; refusal-sampler.ts). */
export interface SampledRefusal {
  key: readonly string[];
  code: string;
  /** The body's size, for refusals without a verified identity. */
  bytes: number;
}

export interface RecordOptions {
  charge?: ChargedAttempt;
  sample?: SampledRefusal;
}

export interface Recorded {
  /** The committed row's seq; undefined when the refusal was counted into its window's summary row. */
  seq: number | undefined;
  /** What the charge decided (granted, with no standings, when nothing was charged). */
  decision: ChargeDecision;
}

/** What a change run with its audit row ends with: a value and its attempt (none: nothing to record), or a refusal whose row commits before `error` is thrown. */
export type AuditedStep<T> = { value: T; attempt: Attempt | undefined } | { attempt: Attempt; error: Error };

/** The open transaction of Auditor.commit, for the change it records. */
export interface AuditTransaction {
  readonly client: pg.PoolClient;
  /** Decides and records a budget charge in this transaction, under the chain lock (lib/budget/charges.ts). */
  charge(charge: Charge): Promise<ChargeDecision>;
  /** Rows not made from the request (the expiry of reveal requests), joining this transaction. */
  add(entries: AuditEntry | readonly AuditEntry[]): Promise<void>;
  /** Runs once the transaction committed (metrics of what it did). */
  afterCommit(callback: () => void): void;
}

export interface AuditorDeps {
  /** The request path's group-commit writer (charges budgets). */
  writer: BudgetedAuditWriter;
  /** For changes committed with their rows (commit). */
  pool: pg.Pool;
  metrics: RevealMetrics;
  /** Accounts repeated refusals (record with `sample`). */
  sampler: RefusalSampler;
  /** For rows and charges that join a transaction (commit): how long to wait for the chain lock. */
  lockTimeoutMs?: number;
}

const NOTHING_SENT = { purpose: null, ticket: null, tokens: [] };

const MAX_PURPOSE = 500;
const MAX_TICKET = 128;
const MAX_TOKENS = 100;

const UNCHARGED: ChargeDecision = { granted: true, standings: [] };

/**
 * The audit's two doors for the service: every audit row of a request goes through one of them.
 * record: an attempt's row, committed (group commit) before the answer leaves, optionally with a
 * budget charge or sampled like repeated refusals. commit: a change and its row in one
 * transaction. Both keep request.audited and request.auditSeq, and count the attempt.
 */
export class Auditor {
  private readonly insertOptions: InsertAuditOptions;

  constructor(private readonly deps: AuditorDeps) {
    this.insertOptions = deps.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: deps.lockTimeoutMs };
  }

  /**
   * Writes the attempt's row and resolves once it is committed (its seq is also kept as
   * request.auditSeq). With `charge`, writes it if the charge fits the caller's budgets and
   * `refused(decision)` otherwise, both decided and committed in one transaction. With `sample`,
   * only the first refusal of its key and window gets its own row; later ones wait for it and
   * are counted into a summary. Rejects with AuditUnavailableError (the caller must then reveal
   * nothing).
   */
  async record(request: FastifyRequest, attempt: Attempt, options: RecordOptions = {}): Promise<Recorded> {
    const { sample } = options;
    if (sample === undefined) return this.write(request, attempt, options.charge);
    let seq: number | undefined;
    const accounted = await this.deps.sampler.account(sample.key, sample.code, this.entryFor(request, attempt), sample.bytes, async () => {
      seq = (await this.write(request, attempt, undefined)).seq;
    });
    if (accounted === 'counted') this.counted(request, attempt);
    return { seq, decision: UNCHARGED };
  }

  /**
   * One transaction for a change and the audit row of the attempt `work` returns: they commit
   * together or not at all (erase, person erase, approval steps; without a request, system
   * changes such as expiry sweeps, whose rows `work` adds). A row that cannot be written, or a
   * COMMIT that fails after it, rejects with AuditUnavailableError and nothing changed; the
   * attempt counts once committed. A refusal step's row commits, then its error is thrown.
   */
  async commit<T>(request: FastifyRequest | undefined, work: (transaction: AuditTransaction) => Promise<AuditedStep<T>>): Promise<T> {
    let rowWritten = false;
    let seq: number | undefined;
    const afterCommit: (() => void)[] = [];
    let step: AuditedStep<T>;
    try {
      step = await withTransaction(this.deps.pool, async (client) => {
        const done = await work(this.transaction(client, afterCommit));
        if (done.attempt !== undefined) {
          if (request === undefined) throw new Error('an attempt is recorded from its request: a change without one adds its rows itself');
          [seq] = await this.insert(client, this.entryFor(request, done.attempt));
          rowWritten = true;
        }
        return done;
      });
    } catch (cause) {
      // Rolled back: whatever the change wrote, its rows included, is gone.
      if (request !== undefined) request.audited = rowWritten || cause instanceof AuditUnavailableError;
      // The COMMIT failed after the row was written: the change and its row are undone together.
      if (rowWritten) throw new AuditUnavailableError({ cause });
      throw cause;
    }
    for (const callback of afterCommit) callback();
    if (request !== undefined) {
      if (step.attempt === undefined) request.audited = true;
      else this.counted(request, step.attempt, seq);
    }
    if ('error' in step) throw step.error;
    return step.value;
  }

  /**
   * The audit row of an attempt. Without a verified identity nothing the caller sent is kept
   * (no tokens, purpose or ticket: an anonymous flood must not write its bodies into a log
   * nobody may delete from); the refusal's reason describes it by sizes and a digest instead.
   * The body is read only for what the attempt does not name (refusals).
   */
  private entryFor(request: FastifyRequest, attempt: Attempt): AuditEntry {
    const verified = request.principal !== undefined;
    const needsBody = verified && (attempt.purpose === undefined || attempt.ticket === undefined || attempt.tokens === undefined);
    const body = needsBody ? bodyFields(request.body) : NOTHING_SENT;
    return {
      action: attempt.action ?? actionOf(request) ?? 'unknown',
      actor: request.principal?.sub ?? null,
      roles: request.principal?.roles ?? [],
      clientAddress: request.ip,
      requestId: attempt.requestId ?? request.id,
      purpose: attempt.purpose !== undefined && verified ? attempt.purpose : body.purpose,
      ticket: attempt.ticket !== undefined && verified ? attempt.ticket : body.ticket,
      tokens: verified ? (attempt.tokens ?? body.tokens) : [],
      fieldCounts: attempt.fieldCounts ?? {},
      outcome: attempt.outcome,
      reason: attempt.reason,
    };
  }

  private async write(request: FastifyRequest, attempt: Attempt, charged: ChargedAttempt | undefined): Promise<Recorded> {
    request.audited = true;
    let final = attempt;
    try {
      let seq: number;
      let decision = UNCHARGED;
      if (charged === undefined) {
        seq = await this.deps.writer.append(this.entryFor(request, attempt));
      } else {
        const appended = await this.deps.writer.appendCharged(this.entryFor(request, attempt), {
          charge: charged.charge,
          refused: (refusal) => this.entryFor(request, (final = charged.refused(refusal))),
        });
        seq = appended.seq;
        decision = appended.decision ?? UNCHARGED;
      }
      request.auditSeq = seq;
      this.deps.metrics.requests.inc({ action: actionFor(request, final), outcome: final.outcome });
      return { seq, decision };
    } catch (error) {
      this.deps.metrics.requests.inc({ action: actionFor(request, attempt), outcome: 'audit_failed' });
      throw error;
    }
  }

  private transaction(client: pg.PoolClient, afterCommit: (() => void)[]): AuditTransaction {
    return {
      client,
      charge: (charge) => chargeBudget(client, charge, this.insertOptions),
      add: async (entries) => {
        await this.insert(client, entries);
      },
      afterCommit: (callback) => afterCommit.push(callback),
    };
  }

  /** Rows joining the caller's open transaction: their seqs. Rejects with AuditUnavailableError. */
  private async insert(client: pg.PoolClient, entries: AuditEntry | readonly AuditEntry[]): Promise<number[]> {
    try {
      return await insertAudit(client, entries, this.insertOptions);
    } catch (cause) {
      throw new AuditUnavailableError({ cause });
    }
  }

  /** The attempt is on record (its own committed row, or counted into a summary): it counts. */
  private counted(request: FastifyRequest, attempt: Attempt, seq?: number): void {
    request.audited = true;
    if (seq !== undefined) request.auditSeq = seq;
    this.deps.metrics.requests.inc({ action: actionFor(request, attempt), outcome: attempt.outcome });
  }
}

function actionFor(request: FastifyRequest, attempt: Attempt): string {
  return attempt.action ?? actionOf(request) ?? 'unknown';
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
