import { EMPTY_ROOT, isHash, nodeHash } from './hash.js';
import { assertSize, bitAt, completeSubtrees, type NodeId } from './tree-math.js';

/** A complete subtree's hash, as a node store keeps it. */
export interface StoredNode extends NodeId {
  hash: Buffer;
}

/**
 * The right edge of a growing tree: the hashes of the complete subtrees that make up leaves
 * [0, size), largest first (one per set bit of size). Appending a leaf merges equal-sized
 * subtrees like a binary counter: O(log n) hashes in the worst case, 1 on average, and the
 * nodes it completes are exactly the ones a node store must save (the leaf plus on average one
 * more). The root is the right fold of the subtrees, at most log2(n) hashes, and never needs
 * the leaves again.
 */
export class CompactRange {
  private constructor(
    private count: number,
    private readonly peaks: Buffer[],
  ) {}

  static empty(): CompactRange {
    return new CompactRange(0, []);
  }

  /**
   * Resumes at `size` from the hashes of its complete subtrees, largest first, as
   * `peakIds(size)` names them (e.g. read back from a node store at start).
   */
  static fromPeaks(size: number, peaks: readonly Uint8Array[]): CompactRange {
    assertSize(size, 'tree size');
    const expected = peakIds(size).length;
    if (peaks.length !== expected) throw new RangeError(`a tree of size ${size} has ${expected} complete subtrees on its right edge, got ${peaks.length}`);
    if (!peaks.every(isHash)) throw new RangeError('every subtree hash must be 32 bytes');
    return new CompactRange(size, peaks.map((peak) => Buffer.from(peak)));
  }

  get size(): number {
    return this.count;
  }

  /** The right-edge subtree hashes, largest first (what fromPeaks takes back). */
  get peakHashes(): readonly Buffer[] {
    return this.peaks;
  }

  /** Adds a leaf (its leaf hash) and returns the nodes this completes, the leaf first, then upwards. */
  append(leafHash: Uint8Array): StoredNode[] {
    if (!isHash(leafHash)) throw new RangeError('a leaf hash must be 32 bytes');
    if (this.count >= Number.MAX_SAFE_INTEGER) throw new RangeError('the tree is full');
    const index = this.count;
    let hash: Buffer = Buffer.from(leafHash);
    const completed: StoredNode[] = [{ level: 0, index, hash }];
    let level = 0;
    // Every set low bit of the old size is a subtree of that level waiting for a right sibling.
    while (bitAt(index, level)) {
      hash = nodeHash(this.peaks.pop()!, hash);
      level += 1;
      completed.push({ level, index: Math.floor(index / 2 ** level), hash });
    }
    this.peaks.push(hash);
    this.count += 1;
    return completed;
  }

  /** MTH of leaves [0, size) (RFC 9162 §2.1.1); the empty tree's root for size 0. */
  root(): Buffer {
    return foldRight(this.peaks);
  }

  clone(): CompactRange {
    return new CompactRange(this.count, [...this.peaks]);
  }
}

/** The complete subtrees of leaves [0, size), largest first: where a tree of that size keeps its right edge. */
export function peakIds(size: number): NodeId[] {
  assertSize(size, 'tree size');
  return completeSubtrees({ start: 0, end: size });
}

/** MTH of consecutive complete subtrees given largest first: nodeHash(h1, nodeHash(h2, … hk)). */
export function foldRight(hashes: readonly Uint8Array[]): Buffer {
  if (hashes.length === 0) return Buffer.from(EMPTY_ROOT);
  let acc: Buffer = Buffer.from(hashes[hashes.length - 1]!);
  for (let i = hashes.length - 2; i >= 0; i -= 1) acc = nodeHash(hashes[i]!, acc);
  return acc;
}
