import type pg from 'pg';
import { ROW_COLUMNS, toRow, type RawRow } from '../../../lib/audit/reader.js';
import type { AuditRow } from '../../../lib/audit/chain.js';

export const REQUEST_STATUSES = ['pending', 'approved', 'denied', 'collected', 'expired'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

export interface Approval {
  approver: string;
  reason: string;
  at: string;
}

/** A reveal request as stored: tokens, never values. */
export interface RevealRequest {
  id: string;
  requester: string;
  roles: string[];
  purpose: string;
  ticket: string | null;
  tokens: string[];
  fieldCounts: Record<string, number>;
  approvalsRequired: number;
  approvals: Approval[];
  status: RequestStatus;
  createdAt: Date;
  expiresAt: Date;
  decidedAt: Date | null;
  decidedBy: string | null;
  decisionReason: string | null;
  collectedAt: Date | null;
}

/** Every column, named as RevealRequest names it: rows are RevealRequests as read. */
const COLUMNS = `id, requester, roles, purpose, ticket, tokens, field_counts AS "fieldCounts", approvals_required AS "approvalsRequired", approvals, status,
  created_at AS "createdAt", expires_at AS "expiresAt", decided_at AS "decidedAt", decided_by AS "decidedBy", decision_reason AS "decisionReason",
  collected_at AS "collectedAt"`;

type Queryable = Pick<pg.PoolClient, 'query'>;

export async function insertRequest(
  client: Queryable,
  request: Pick<RevealRequest, 'id' | 'requester' | 'roles' | 'purpose' | 'ticket' | 'tokens' | 'fieldCounts' | 'approvalsRequired'>,
  ttlSeconds: number,
): Promise<RevealRequest> {
  const { rows } = await client.query<RevealRequest>(
    `INSERT INTO reveal_requests (id, requester, roles, purpose, ticket, tokens, field_counts, approvals_required, status, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', now(), now() + make_interval(secs => $9))
     RETURNING ${COLUMNS}`,
    [request.id, request.requester, request.roles, request.purpose, request.ticket, request.tokens, JSON.stringify(request.fieldCounts), request.approvalsRequired, ttlSeconds],
  );
  return rows[0] as RevealRequest;
}

/** The request, locked until the transaction ends; undefined when there is none. */
export async function lockRequest(client: Queryable, id: string): Promise<RevealRequest | undefined> {
  const { rows } = await client.query<RevealRequest>(`SELECT ${COLUMNS} FROM reveal_requests WHERE id = $1 FOR UPDATE`, [id]);
  return rows[0];
}

export async function isPastExpiry(client: Queryable, request: RevealRequest): Promise<boolean> {
  const { rows } = await client.query<{ past: boolean }>('SELECT $1::timestamptz <= now() AS past', [request.expiresAt]);
  return rows[0]?.past === true;
}

export async function recordApproval(client: Queryable, id: string, approvals: Approval[], approved: boolean, ttlSeconds: number): Promise<RevealRequest> {
  // An approved request can be collected for a full ttl from its approval.
  const { rows } = await client.query<RevealRequest>(
    `UPDATE reveal_requests SET approvals = $2, status = CASE WHEN $3 THEN 'approved' ELSE status END,
       decided_at = CASE WHEN $3 THEN now() ELSE decided_at END,
       decided_by = CASE WHEN $3 THEN $4 ELSE decided_by END,
       decision_reason = CASE WHEN $3 THEN $5 ELSE decision_reason END,
       expires_at = CASE WHEN $3 THEN now() + make_interval(secs => $6) ELSE expires_at END
     WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, JSON.stringify(approvals), approved, approvals.at(-1)?.approver ?? null, approvals.at(-1)?.reason ?? null, ttlSeconds],
  );
  return rows[0] as RevealRequest;
}

export async function recordDenial(client: Queryable, id: string, approver: string, reason: string): Promise<void> {
  await client.query(`UPDATE reveal_requests SET status = 'denied', decided_at = now(), decided_by = $2, decision_reason = $3 WHERE id = $1`, [id, approver, reason]);
}

export async function markCollected(client: Queryable, id: string): Promise<void> {
  await client.query(`UPDATE reveal_requests SET status = 'collected', collected_at = now() WHERE id = $1`, [id]);
}

/** Back to the approvers (the policy now asks for more approvals than the request has). */
export async function markPending(client: Queryable, id: string): Promise<void> {
  await client.query(`UPDATE reveal_requests SET status = 'pending', decided_at = NULL, decided_by = NULL, decision_reason = NULL WHERE id = $1`, [id]);
}

export async function markExpired(client: Queryable, id: string): Promise<void> {
  await client.query(`UPDATE reveal_requests SET status = 'expired' WHERE id = $1`, [id]);
}

/** Pending or approved requests past their expiry, locked (other replicas skip them). */
export async function claimExpired(client: Queryable, limit: number): Promise<RevealRequest[]> {
  const { rows } = await client.query<RevealRequest>(
    `UPDATE reveal_requests SET status = 'expired'
     WHERE id IN (SELECT id FROM reveal_requests WHERE status IN ('pending', 'approved') AND expires_at <= now()
                  ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
     RETURNING ${COLUMNS}`,
    [limit],
  );
  return rows;
}

export async function listPending(pool: pg.Pool, limit: number): Promise<RevealRequest[]> {
  const { rows } = await pool.query<RevealRequest>(
    `SELECT ${COLUMNS} FROM reveal_requests WHERE status = 'pending' AND expires_at > now() ORDER BY created_at LIMIT $1`,
    [limit],
  );
  return rows;
}

// Arbitrary constant: the namespace of the per-requester advisory locks (the second key is a hash of the requester).
export const OPEN_REQUESTS_LOCK_NAMESPACE = 7_468_024;

/**
 * Serialises the requester's new requests until the transaction ends, so counting their open
 * requests and inserting one is atomic: two concurrent requests cannot both take the last slot.
 * A hash collision between two requesters only makes them wait for each other.
 */
export async function lockRequester(client: Queryable, requester: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [OPEN_REQUESTS_LOCK_NAMESPACE, requester]);
}

/** How many of the requester's requests can still change or be collected (atomic only under lockRequester). */
export async function countOpen(client: Queryable, requester: string): Promise<number> {
  const { rows } = await client.query<{ open: number }>(
    `SELECT count(*)::int AS open FROM reveal_requests WHERE requester = $1 AND status IN ('pending', 'approved') AND expires_at > now()`,
    [requester],
  );
  return rows[0]?.open ?? 0;
}

/** The requester's requests that can still change or be collected. */
export async function listOpenFor(pool: pg.Pool, requester: string, limit: number): Promise<RevealRequest[]> {
  const { rows } = await pool.query<RevealRequest>(
    `SELECT ${COLUMNS} FROM reveal_requests WHERE requester = $1 AND status IN ('pending', 'approved') AND expires_at > now()
     ORDER BY created_at LIMIT $2`,
    [requester, limit],
  );
  return rows;
}

/** The request as stored, without a lock (collection reads it before its transaction). */
export async function readRequest(db: Queryable, id: string): Promise<RevealRequest | undefined> {
  const { rows } = await db.query<RevealRequest>(`SELECT ${COLUMNS} FROM reveal_requests WHERE id = $1`, [id]);
  return rows[0];
}

/** The actions of a reveal request's life in the audit chain (its rows carry the request's id in request_id). */
export const REQUEST_STEP_ACTIONS = ['reveal.request', 'approval.approve', 'approval.deny', 'reveal.collect', 'reveal.expire'] as const;

/** A row of the chain about one request, with the prev_hash of the row after it (undefined: it is the head). */
export interface ChainStep {
  row: AuditRow;
  nextPrevHash: Buffer | null | undefined;
}

/**
 * Every row of the audit chain about reveal request `id` (partial index
 * audit_log_request_steps_idx), in chain order, each with the link the next row makes to it,
 * so the caller can check the rows it relies on were neither edited nor inserted alone.
 */
export async function readChainSteps(db: Queryable, id: string): Promise<ChainStep[]> {
  const { rows } = await db.query<RawRow & { next_prev_hash: Buffer | null; has_next: boolean }>(
    `SELECT s.*, n.prev_hash AS next_prev_hash, n.seq IS NOT NULL AS has_next
     FROM (SELECT ${ROW_COLUMNS} FROM audit_log WHERE request_id = $1 AND action = ANY($2::text[])) AS s
     LEFT JOIN audit_log n ON n.seq = s.seq + 1
     ORDER BY s.seq`,
    [id, REQUEST_STEP_ACTIONS],
  );
  return rows.map((raw) => ({ row: toRow(raw), nextPrevHash: raw.has_next ? raw.next_prev_hash : undefined }));
}
