import type pg from 'pg';
import { withTransaction } from '../../db/transaction.js';
import { linkEntries, type AuditEntry, type ChainHead } from './entry.js';
import type { CompactRange } from './merkle/compact-range.js';
import { DEFAULT_LOCK_TIMEOUT_MS, INSERT_ROWS, INSERT_ROWS_AND_NODES, lockChain, READ_HEAD } from './sql.js';
import { nodesJson, READ_TIP } from './tree-sql.js';
import { growTree, tipOf } from './tree-store.js';

export interface InsertAuditOptions {
  /** How long to wait for the chain lock before failing (default 5 s). */
  lockTimeoutMs?: number;
  now?: () => number;
}

/**
 * The one way to append audit rows outside the request path's group commit. Given a client in
 * an open transaction, the rows join it: they commit or roll back with the caller's change
 * (an erase, a retention drop, an approval step), so no change exists without its row. Given
 * a pool, the rows commit in a transaction of their own. Either way the chain lock is taken
 * first, so every writer of every process links to the same head. Returns the rows' seqs.
 */
export async function insertAudit(db: pg.Pool | pg.PoolClient, entries: AuditEntry | readonly AuditEntry[], options: InsertAuditOptions = {}): Promise<number[]> {
  const list = isEntryList(entries) ? entries : [entries];
  if (isPool(db)) return withTransaction(db, (client) => insertAudit(client, list, options));
  await db.query(lockChain(options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS));
  return (await insertAfterHead(db, list, new Date(options.now?.() ?? Date.now()).toISOString())).seqs;
}

/** What an append leaves behind: the rows' seqs, the new chain head, and the tree at that head (undefined: not written, see below). */
export interface InsertedRows {
  seqs: number[];
  last: ChainHead | undefined;
  tree: CompactRange | undefined;
}

/**
 * With the chain lock held by the caller's transaction: reads the head and the tree's right edge
 * (one statement), links the entries after the head, and inserts them with the Merkle nodes they
 * complete (one statement): O(log n) hashes and about two node rows per entry, never a read of
 * an older row. When the stored tree does not reach the head (rows written without nodes, by an
 * older version or before migration 0011) the rows are inserted without nodes and `tree` is
 * undefined: the catch-up (tree-backfill.ts) adds theirs later, in order.
 */
export async function insertAfterHead(client: pg.PoolClient, entries: readonly AuditEntry[], occurredAt: string, options: { treeNodes?: boolean } = {}): Promise<InsertedRows> {
  const withTree = options.treeNodes !== false;
  const tip = await client.query<{ seq: string; hash: Buffer; peaks?: Buffer[] }>(withTree ? { name: 'audit-tip', text: READ_TIP } : { name: 'audit-head', text: READ_HEAD });
  const { head, tree } = tipOf(tip.rows[0]);
  const { rows, last, leaves } = linkEntries(entries, head?.seq ?? 0, head?.hash ?? null, occurredAt);
  const rowsJson = JSON.stringify(rows);
  if (tree === undefined || !withTree) {
    await client.query({ name: 'audit-insert', text: INSERT_ROWS, values: [rowsJson] });
    return { seqs: rows.map((row) => row.seq), last, tree: undefined };
  }
  const grown = growTree(tree, leaves);
  await client.query({ name: 'audit-insert-tree', text: INSERT_ROWS_AND_NODES, values: [rowsJson, nodesJson(grown.nodes)] });
  return { seqs: rows.map((row) => row.seq), last, tree: grown.tree };
}

function isEntryList(entries: AuditEntry | readonly AuditEntry[]): entries is readonly AuditEntry[] {
  return Array.isArray(entries);
}

function isPool(db: pg.Pool | pg.PoolClient): db is pg.Pool {
  return 'totalCount' in db;
}
