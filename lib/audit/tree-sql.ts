import type { StoredNode } from './merkle/compact-range.js';

/**
 * SQL of the stored Merkle tree (audit_tree_nodes, migration 0011). Node (level, idx) covers
 * leaves [idx·2^level, (idx+1)·2^level); leaf i is audit_log row seq i + 1.
 */

/**
 * The hashes of the complete subtrees on the right edge of the tree of `size` leaves, largest
 * first, as an array (peakIds in SQL: one node per set bit `l` of the size, at index
 * (size >> (l + 1)) << 1). Fewer elements than set bits: those nodes are not stored.
 */
export const peaksOf = (size: string) => `ARRAY(
  SELECT n.hash FROM generate_series(62, 0, -1) AS l
  JOIN audit_tree_nodes AS n ON n.level = l AND n.idx = ((${size}) >> (l + 1)) << 1
  WHERE ((${size}) >> l) & 1 = 1
  ORDER BY l DESC)`;

/**
 * The chain head and the tree's right edge at its size, in one statement (read after the chain
 * lock is held, like READ_HEAD): everything an append needs to link its rows and extend the
 * tree without reading any older row. No row: the log is empty.
 */
export const READ_TIP = `SELECT h.seq, h.hash, ${peaksOf('h.seq')} AS peaks FROM (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1) AS h`;

/** How many leaves the stored tree has: the last leaf's index + 1 (a backward scan of the primary key). */
export const TREE_SIZE = 'coalesce((SELECT idx + 1 FROM audit_tree_nodes WHERE level = 0 ORDER BY idx DESC LIMIT 1), 0)';

/** The stored tree's size and right edge, in one statement. */
export const READ_TREE_EDGE = `SELECT t.size, ${peaksOf('t.size')} AS peaks FROM (SELECT ${TREE_SIZE} AS size) AS t`;

/** Nodes as the INSERT reads them: `[[level, idx, "hex"], …]`. */
export function nodesJson(nodes: readonly StoredNode[]): string {
  return JSON.stringify(nodes.map((node) => [node.level, node.index, node.hash.toString('hex')]));
}

/**
 * A data-modifying WITH clause that inserts the nodes given as JSON (`nodesJson`), to put in
 * front of the audit row INSERT: rows and nodes are one statement, so they commit together and
 * a condition on the chain head (the writer's one-round-trip path) is evaluated once, on one
 * snapshot, for both. A node already stored (the tree is ahead of the log: rows deleted by the
 * owner) violates the primary key and fails the append: nothing is overwritten.
 */
export const withNodes = (nodes: string, condition = '') => `WITH tree_nodes AS (
  INSERT INTO audit_tree_nodes (level, idx, hash)
  SELECT (n.node->>0)::smallint, (n.node->>1)::bigint, decode(n.node->>2, 'hex')
  FROM jsonb_array_elements(${nodes}::jsonb) AS n(node)
  ${condition}
)
`;

/** The hashes of the nodes asked for, in the order asked (null where a node is not stored): one query for a whole proof. */
export const READ_NODES = `SELECT n.hash FROM unnest($1::smallint[], $2::bigint[]) WITH ORDINALITY AS q(level, idx, ord)
LEFT JOIN audit_tree_nodes AS n ON n.level = q.level AND n.idx = q.idx
ORDER BY q.ord`;

/** Nodes alone ($1, nodesJson): the catch-up of rows that were written without theirs. */
export const INSERT_NODES = `INSERT INTO audit_tree_nodes (level, idx, hash)
SELECT (n.node->>0)::smallint, (n.node->>1)::bigint, decode(n.node->>2, 'hex')
FROM jsonb_array_elements($1::jsonb) AS n(node)`;
