import { AUDIT_COLUMNS, type AuditColumn } from './audit-row.js';
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
 * How each column travels in a linked record (LinkedRecord: the row's JSON form) and becomes
 * what the column stores: its type in jsonb_to_recordset, and the conversion to the column's type.
 */
const RECORD_COLUMNS: Record<AuditColumn, { type: string; stored?: (value: string) => string }> = {
  seq: { type: 'bigint' },
  occurred_at: { type: 'text', stored: (value) => `${value}::timestamptz` },
  action: { type: 'text' },
  actor: { type: 'text' },
  roles: { type: 'text[]' },
  client_address: { type: 'text' },
  request_id: { type: 'text' },
  purpose: { type: 'text' },
  ticket: { type: 'text' },
  tokens: { type: 'text[]' },
  field_counts: { type: 'jsonb' },
  outcome: { type: 'text' },
  reason: { type: 'text' },
  prev_hash: { type: 'text', stored: (value) => `decode(${value}, 'hex')` },
  hash: { type: 'text', stored: (value) => `decode(${value}, 'hex')` },
};

const INSERT_COLUMNS = AUDIT_COLUMNS.join(', ');
const STORED_VALUES = AUDIT_COLUMNS.map((column) => RECORD_COLUMNS[column].stored?.(`r.${column}`) ?? `r.${column}`).join(', ');
const RECORD_DEFINITION = AUDIT_COLUMNS.map((column) => `${column} ${RECORD_COLUMNS[column].type}`).join(', ');

/**
 * Inserts linked records given as a JSON array (a `$n` parameter or an escaped literal), in seq
 * order; with `nodes` (JSON of nodesJson), their Merkle nodes in the same statement, under the
 * same condition.
 */
export const insertRows = (rowsJson: string, condition = '', nodes?: string) => `${nodes === undefined ? '' : withNodes(nodes, condition)}
INSERT INTO audit_log (${INSERT_COLUMNS})
SELECT ${STORED_VALUES}
FROM jsonb_to_recordset(${rowsJson}::jsonb) AS r(${RECORD_DEFINITION})
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
