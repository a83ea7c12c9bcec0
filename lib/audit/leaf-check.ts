import type pg from 'pg';
import { chainHashOf } from './chain.js';
import { auditLeaf } from './merkle/audit-leaf.js';
import { leafHash } from './merkle/hash.js';
import { readAuditRows } from './reader.js';

type Queryable = Pick<pg.Pool, 'query'>;

export interface RowCheckRequest {
  /** Check rows fromSeq..toSeq (inclusive). fromSeq's own link to the row before it is not checked. */
  fromSeq: number;
  toSeq: number;
}

export interface RowCheckResult {
  ok: boolean;
  /** The thread that re-hashed the rows (node:worker_threads threadId; 0 is a process's main thread). */
  threadId?: number;
  /** Rows whose chain hash and leaf were recomputed. */
  checked: number;
  failure?: { seq: number; message: string };
}

/**
 * Before the checkpointer signs the stored tree, the rows it newly covers must be the leaves it
 * stores: each row's chain hash is recomputed, its link to the row before it checked, and its
 * RFC 9162 leaf hash compared with the stored leaf (audit_tree_nodes level 0). Together with the
 * consistency proof against the last published checkpoint, this means the signature covers the
 * rows as they are. Runs in a worker thread (services/reveal-api/audit/row-checker.ts): it
 * re-hashes every row since the last checkpoint, which must not pause the event loop that serves
 * requests.
 */
export async function checkRowsAgainstLeaves(db: Queryable, request: RowCheckRequest, pageSize = 2000): Promise<RowCheckResult> {
  let checked = 0;
  let previous: { seq: number; hash: Buffer } | undefined;
  const fail = (seq: number, message: string): RowCheckResult => ({ ok: false, checked, failure: { seq, message } });
  if (request.toSeq < request.fromSeq) return { ok: true, checked };
  for await (const page of readAuditRows(db, { afterSeq: request.fromSeq - 1, toSeq: request.toSeq, pageSize })) {
    const first = page[0]!.seq;
    const last = page.at(-1)!.seq;
    const { rows: leaves } = await db.query<{ idx: string; hash: Buffer }>({
      name: 'audit-tree-leaves',
      text: 'SELECT idx, hash FROM audit_tree_nodes WHERE level = 0 AND idx >= $1 AND idx <= $2 ORDER BY idx',
      values: [first - 1, last - 1],
    });
    const leafOf = new Map(leaves.map((leaf) => [Number(leaf.idx), leaf.hash]));
    for (const row of page) {
      const expected = previous === undefined ? request.fromSeq : previous.seq + 1;
      if (row.seq !== expected) return fail(expected, `row ${expected} is missing (deleted)`);
      if (previous !== undefined && (row.prevHash === null || !row.prevHash.equals(previous.hash))) {
        return fail(row.seq, `prev_hash does not match the hash of row ${previous.seq} (rows deleted or reordered)`);
      }
      // One serialisation gives both hashes (the leaf's bytes are the chain's canonical bytes).
      const canonical = auditLeaf(row);
      if (!chainHashOf(row.prevHash, canonical).equals(row.hash)) return fail(row.seq, 'content does not match its hash (row edited)');
      const leaf = leafOf.get(row.seq - 1);
      if (leaf === undefined) return fail(row.seq, `its leaf is not in the stored tree`);
      if (!leafHash(canonical).equals(leaf)) return fail(row.seq, 'content does not match its stored leaf (row or tree edited)');
      checked += 1;
      previous = { seq: row.seq, hash: row.hash };
    }
  }
  if ((previous?.seq ?? request.fromSeq - 1) !== request.toSeq) return fail((previous?.seq ?? request.fromSeq - 1) + 1, `rows end at seq ${previous?.seq ?? request.fromSeq - 1}, expected ${request.toSeq}`);
  return { ok: true, checked };
}
