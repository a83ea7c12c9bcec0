import type pg from 'pg';
import { TokenvaultError } from '../errors.js';
import { foldRight, peakIds } from './merkle/compact-range.js';
import { MissingNodeError, planRanges, type NodePlan } from './merkle/node-store.js';
import { consistencyRanges, inclusionRanges, type NodeId } from './merkle/tree-math.js';
import { PgNodeStore } from './tree-store.js';
import { TREE_SIZE } from './tree-sql.js';

type Queryable = Pick<pg.Pool, 'query'>;

/** RFC 9162 inclusion proof of audit row `seq` (leaf seq − 1) in the tree of `treeSize` rows, with that tree's root. */
export interface InclusionProof {
  seq: number;
  leafIndex: number;
  treeSize: number;
  /** The leaf as the tree stores it: SHA-256(0x00 || the row's canonical bytes). */
  leafHash: Buffer;
  /** PATH(leafIndex, D[treeSize]) of RFC 9162 §2.1.3.1, bottom first. */
  proof: Buffer[];
  root: Buffer;
}

/** RFC 9162 consistency proof between two tree sizes, with both roots. */
export interface ConsistencyProof {
  fromSize: number;
  toSize: number;
  /** PROOF(fromSize, D[toSize]) of RFC 9162 §2.1.4.1 (empty when the sizes are equal or fromSize is 0). */
  proof: Buffer[];
  fromRoot: Buffer;
  toRoot: Buffer;
}

/** A proof asked for a tree the stored tree has not reached (yet), or an entry outside the tree. */
export class ProofRangeError extends TokenvaultError {
  constructor(
    code: 'tree_size_too_large' | 'entry_outside_tree',
    message: string,
    readonly storedSize?: number,
  ) {
    super(code, message);
  }
}

/**
 * Inclusion proofs of several rows in one tree, from the stored nodes in ONE query (every node
 * fetched once): at most 2·log2(n) nodes per row plus the root's right edge. Nothing is hashed
 * but the O(log n) folds of proof ranges that are not complete subtrees.
 */
export async function proveInclusions(db: Queryable, seqs: readonly number[], treeSize: number): Promise<InclusionProof[]> {
  if (!Number.isSafeInteger(treeSize) || treeSize < 1) throw new ProofRangeError('entry_outside_tree', `tree size must be at least 1, got ${treeSize}`);
  for (const seq of seqs) {
    if (!Number.isSafeInteger(seq) || seq < 1 || seq > treeSize) throw new ProofRangeError('entry_outside_tree', `entry ${seq} is not in the tree of size ${treeSize} (rows 1..${treeSize})`);
  }
  const root = peakIds(treeSize);
  const plans = seqs.map((seq) => planRanges(inclusionRanges(seq - 1, treeSize)));
  const leaves = seqs.map((seq): NodeId => ({ level: 0, index: seq - 1 }));
  const fetched = await fetchOnce(db, [root, leaves, ...plans.map((plan) => plan.ids)], treeSize);
  const rootHash = foldRight(fetched[0]!);
  return seqs.map((seq, position) => ({
    seq,
    leafIndex: seq - 1,
    treeSize,
    leafHash: fetched[1]![position]!,
    proof: (plans[position] as NodePlan).assemble(fetched[position + 2]!),
    root: rootHash,
  }));
}

export async function proveInclusion(db: Queryable, seq: number, treeSize: number): Promise<InclusionProof> {
  return (await proveInclusions(db, [seq], treeSize))[0]!;
}

/** Consistency proof from `fromSize` to `toSize` and both roots, in one query. */
export async function proveConsistency(db: Queryable, fromSize: number, toSize: number): Promise<ConsistencyProof> {
  if (!Number.isSafeInteger(fromSize) || !Number.isSafeInteger(toSize) || fromSize < 0 || fromSize > toSize) {
    throw new ProofRangeError('entry_outside_tree', `a consistency proof needs 0 ≤ from ≤ to, got from ${fromSize} to ${toSize}`);
  }
  const plan = planRanges(consistencyRanges(fromSize, toSize));
  const [fromPeaks, toPeaks, proofNodes] = await fetchOnce(db, [peakIds(fromSize), peakIds(toSize), plan.ids], toSize);
  return { fromSize, toSize, proof: plan.assemble(proofNodes!), fromRoot: foldRight(fromPeaks!), toRoot: foldRight(toPeaks!) };
}

/** The hashes of several lists of nodes, each node fetched once, in one query; a tree smaller than `treeSize` is a ProofRangeError. */
async function fetchOnce(db: Queryable, lists: readonly (readonly NodeId[])[], treeSize: number): Promise<Buffer[][]> {
  const unique = new Map<string, NodeId>();
  for (const list of lists) for (const id of list) unique.set(`${id.level}/${id.index}`, id);
  const ids = [...unique.values()];
  let hashes: Buffer[];
  try {
    hashes = await new PgNodeStore(db).getNodes(ids);
  } catch (error) {
    if (!(error instanceof MissingNodeError)) throw error;
    const stored = Number((await db.query<{ size: string }>(`SELECT ${TREE_SIZE} AS size`)).rows[0]?.size ?? 0);
    // Within the stored tree a node cannot be missing, unless someone deleted it: that is not the caller's doing.
    if (stored >= treeSize) throw error;
    throw new ProofRangeError('tree_size_too_large', `the tree has ${stored} entries so far, not ${treeSize}`, stored);
  }
  const byKey = new Map(ids.map((id, position) => [`${id.level}/${id.index}`, hashes[position]!]));
  return lists.map((list) => list.map((id) => byKey.get(`${id.level}/${id.index}`)!));
}
