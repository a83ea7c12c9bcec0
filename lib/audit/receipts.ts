import type pg from 'pg';
import { proveInclusions, type InclusionProof } from './proofs.js';
import { latestSignedTreeSize, type SignedTreeSize } from './signed-tree.js';

type Queryable = Pick<pg.Pool, 'query'>;

/**
 * Receipts: inclusion proofs of audit entries to a tree size, by default the newest signed
 * checkpoint's. An entry after that size is "not yet covered by a signed checkpoint": its
 * receipt can be fetched again after the next one (GET /audit/entries/{seq}).
 */
export interface Receipts {
  /** The newest signed checkpoint (undefined: none yet). */
  checkpoint: SignedTreeSize | undefined;
  /** The size the proofs are to (undefined: no size to prove to). */
  treeSize: number | undefined;
  /** Per seq; absent: not covered by that size. */
  proofs: Map<number, InclusionProof>;
}

/** Inclusion proofs of `seqs` (one node query for all of them) to `treeSize`, or to the newest signed checkpoint's size. */
export async function inclusionReceipts(db: Queryable, seqs: readonly number[], treeSize?: number): Promise<Receipts> {
  const checkpoint = await latestSignedTreeSize(db);
  const size = treeSize ?? checkpoint?.size;
  const covered = size === undefined ? [] : [...new Set(seqs)].filter((seq) => seq <= size);
  const proofs = covered.length === 0 || size === undefined ? [] : await proveInclusions(db, covered, size);
  return { checkpoint, treeSize: size, proofs: new Map(proofs.map((proof) => [proof.seq, proof])) };
}

/** Why an entry has no proof, in plain words. */
export function notCoveredNote(seq: number, receipts: Pick<Receipts, 'checkpoint' | 'treeSize'>): string {
  if (receipts.treeSize === undefined) return 'not yet covered by a signed checkpoint: no checkpoint has been signed yet';
  const newest = receipts.checkpoint;
  if (newest !== undefined && newest.size === receipts.treeSize) {
    return `not yet covered by a signed checkpoint: the newest (index ${newest.index}) covers entries 1..${newest.size}; entry ${seq} will be in the next one`;
  }
  return `entry ${seq} is not in the tree of size ${receipts.treeSize}`;
}
