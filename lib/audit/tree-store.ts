import type pg from 'pg';
import type { ChainHead } from './entry.js';
import { CompactRange, peakIds, type StoredNode } from './merkle/compact-range.js';
import { MissingNodeError, type NodeStore } from './merkle/node-store.js';
import type { NodeId } from './merkle/tree-math.js';
import { READ_NODES, READ_TREE_EDGE } from './tree-sql.js';

type Queryable = Pick<pg.Pool, 'query'>;

/**
 * The Merkle tree's nodes as PostgreSQL stores them (audit_tree_nodes): proofs and past roots
 * (lib/audit/merkle/node-store.ts) fetch the O(log n) nodes they need in one query. Read by the
 * reveal_api and auditor roles.
 */
export class PgNodeStore implements NodeStore {
  constructor(private readonly db: Queryable) {}

  async getNodes(ids: readonly NodeId[]): Promise<Buffer[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.db.query<{ hash: Buffer | null }>({
      name: 'audit-tree-nodes',
      text: READ_NODES,
      values: [ids.map((id) => id.level), ids.map((id) => id.index)],
    });
    return ids.map((id, position) => {
      const hash = rows[position]?.hash;
      if (hash === null || hash === undefined) throw new MissingNodeError(id);
      return hash;
    });
  }
}

/** The signed-or-not state of the stored tree: how many leaves (audit rows 1..size) and their root. */
export interface TreeHead {
  size: number;
  root: Buffer;
}

/**
 * The stored tree's size and root (RFC 9162 MTH of rows 1..size), from its right-edge nodes
 * only (at most log2(n) of them, one query). Normally size = the audit log's last seq: rows and
 * nodes commit together. Smaller while rows written without nodes (an older version during a
 * rolling upgrade) wait for the catch-up (lib/audit/tree-backfill.ts).
 */
export async function treeHead(db: Queryable): Promise<TreeHead> {
  const tree = await readTreeEdge(db);
  return { size: tree.size, root: tree.root() };
}

/** The stored tree's right edge, ready to append to; throws MissingNodeError if a node of it is gone. */
export async function readTreeEdge(db: Queryable): Promise<CompactRange> {
  const { rows } = await db.query<{ size: string; peaks: Buffer[] }>({ name: 'audit-tree-edge', text: READ_TREE_EDGE });
  const size = Number(rows[0]?.size ?? 0);
  const tree = treeAt(size, rows[0]?.peaks ?? []);
  if (tree !== undefined) return tree;
  // A node of the edge is not stored (deleted by the owner): getNodes names it.
  return CompactRange.fromPeaks(size, await new PgNodeStore(db).getNodes(peakIds(size)));
}

/** The tree of `size` leaves from its right-edge hashes (largest first), or undefined when some are not stored. */
export function treeAt(size: number, peaks: readonly Buffer[]): CompactRange | undefined {
  return peaks.length === peakIds(size).length ? CompactRange.fromPeaks(size, peaks) : undefined;
}

/** A READ_TIP row: the chain head and the tree at its size (undefined: the stored tree does not reach the head, or was not read). */
export interface Tip {
  head: ChainHead | undefined;
  tree: CompactRange | undefined;
}

export function tipOf(row: { seq: string; hash: Buffer; peaks?: Buffer[] } | undefined): Tip {
  if (row === undefined) return { head: undefined, tree: CompactRange.empty() };
  const seq = Number(row.seq);
  return { head: { seq, hash: row.hash }, tree: row.peaks === undefined ? undefined : treeAt(seq, row.peaks) };
}

/** Appends leaf hashes to a copy of `tree`: the grown tree and every node the appends complete (what to store). */
export function growTree(tree: CompactRange, leaves: readonly Buffer[]): { tree: CompactRange; nodes: StoredNode[] } {
  const grown = tree.clone();
  const nodes = leaves.flatMap((leaf) => grown.append(leaf));
  return { tree: grown, nodes };
}
