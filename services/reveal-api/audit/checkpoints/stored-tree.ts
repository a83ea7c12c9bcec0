import type pg from 'pg';
import { PgNodeStore, treeHead } from '../../../../lib/audit/tree-store.js';
import type { StoredTree } from './checkpointer.js';

/** The tree the checkpointer signs: audit_tree_nodes, read in its transaction (O(log n) nodes per head or proof). */
export const storedTree: StoredTree = {
  head: (client: pg.PoolClient) => treeHead(client),
  nodes: (client: pg.PoolClient) => new PgNodeStore(client),
};
