import type pg from 'pg';
import { auditLeafHash } from '../../../lib/audit/merkle/audit-leaf.js';
import { MemoryMerkleTree } from '../../../lib/audit/merkle/memory-tree.js';
import { readAuditRows } from '../../../lib/audit/reader.js';
import type { StoredTree } from './checkpointer.js';

/**
 * TEMPORARY stand-in until the tlog-store branch (audit_tree_nodes, PgNodeStore, treeHead) is
 * merged: rebuilds the tree from the rows in memory on every call. Replaced by the stored tree.
 */
export const storedTree: StoredTree = {
  async head(client: pg.PoolClient) {
    const tree = await build(client);
    return { size: tree.size, root: tree.root() };
  },
  nodes(client: pg.PoolClient) {
    let tree: Promise<MemoryMerkleTree> | undefined;
    return { getNodes: async (ids) => (await (tree ??= build(client))).store.getNodes(ids) };
  },
};

async function build(client: pg.PoolClient): Promise<MemoryMerkleTree> {
  const tree = new MemoryMerkleTree();
  for await (const page of readAuditRows(client)) for (const row of page) tree.appendLeafHash(auditLeafHash(row));
  return tree;
}
