import type { ChainHead } from './entry.js';
import { withNodes } from './tree-sql.js';

// Arbitrary constant: the one lock that orders every writer of the chain, across processes.
export const AUDIT_CHAIN_LOCK_ID = 7_468_022;

/** How long a write may wait for the chain lock before it fails (and the request fails closed). */
export const DEFAULT_LOCK_TIMEOUT_MS = 5_000;

/** Takes the chain lock for the rest of the transaction; a locked table or a stuck writer turns into an error, not a hang. */
export function lockChain(lockTimeoutMs: number): string {
  const timeout = Math.max(1, Math.trunc(lockTimeoutMs));
  return [`SET LOCAL lock_timeout = ${timeout}`, `SET LOCAL statement_timeout = ${timeout * 2}`, `SELECT pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK_ID})`].join('; ');
}

/** Read after the lock is held, in a statement of its own, so its snapshot sees the latest committed row. */
export const READ_HEAD = 'SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1';

/**
 * Inserts linked records given as a JSON array (a `$n` parameter or an escaped literal), in seq
 * order; with `nodes` (JSON of nodesJson), their Merkle nodes in the same statement, under the
 * same condition.
 */
export const insertRows = (rowsJson: string, condition = '', nodes?: string) => `${nodes === undefined ? '' : withNodes(nodes, condition)}
INSERT INTO audit_log (seq, occurred_at, action, actor, roles, client_address, request_id, purpose, ticket, tokens,
                       field_counts, outcome, reason, prev_hash, hash)
SELECT r.seq, r.occurred_at::timestamptz, r.action, r.actor, r.roles, r.client_address, r.request_id, r.purpose, r.ticket,
       r.tokens, r.field_counts, r.outcome, r.reason, decode(r.prev_hash, 'hex'), decode(r.hash, 'hex')
FROM jsonb_to_recordset(${rowsJson}::jsonb) AS r(seq bigint, occurred_at text, action text, actor text, roles text[],
     client_address text, request_id text, purpose text, ticket text, tokens text[], field_counts jsonb, outcome text,
     reason text, prev_hash text, hash text)
${condition}
ORDER BY r.seq`;

export const INSERT_ROWS = insertRows('$1');

/** INSERT_ROWS and the rows' Merkle nodes ($2, nodesJson), one statement. */
export const INSERT_ROWS_AND_NODES = insertRows('$1', '', '$2');

/**
 * Inserts only if the chain head is still the one the rows were linked to (and the nodes, when
 * given, only then too). Runs after the lock in a statement of its own (READ COMMITTED: a fresh
 * snapshot), so it sees every committed row.
 */
export const insertIfHeadIs = (rowsLiteral: string, head: ChainHead, nodesLiteral?: string) =>
  insertRows(
    rowsLiteral,
    `WHERE EXISTS (SELECT 1 FROM (${READ_HEAD}) AS h WHERE h.seq = ${head.seq} AND h.hash = decode('${head.hash.toString('hex')}', 'hex'))`,
    nodesLiteral,
  );
