/**
 * Index arithmetic of RFC 9162 trees, on plain numbers. JavaScript's bitwise operators work on
 * 32 bits, so nothing here uses them: sizes and indices go up to Number.MAX_SAFE_INTEGER
 * (2^53 − 1 leaves), far beyond what one audit log holds.
 */

/** A node of the tree that covers a complete (perfect) subtree: leaves [index·2^level, (index+1)·2^level). */
export interface NodeId {
  level: number;
  index: number;
}

/** Leaves [start, end) of the tree. */
export interface LeafRange {
  start: number;
  end: number;
}

export function assertSize(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be an integer from 0 to 2^53-1, got ${value}`);
}

/** The largest power of two that is <= n (n >= 1). */
export function highestPowerOfTwoAtMost(n: number): number {
  let p = 2 ** Math.floor(Math.log2(n));
  // Math.log2 is a float: correct any rounding at the edges so that p <= n < 2p holds exactly.
  while (p > n) p /= 2;
  while (p * 2 <= n) p *= 2;
  return p;
}

/** k in RFC 9162 §2.1.1: the largest power of two smaller than n (n > 1). */
export function splitPoint(n: number): number {
  return highestPowerOfTwoAtMost(n - 1);
}

export function isPowerOfTwo(n: number): boolean {
  return n >= 1 && highestPowerOfTwoAtMost(n) === n;
}

/** Bit `level` of n (n / 2^level, rounded down, is odd). */
export function bitAt(n: number, level: number): boolean {
  return Math.floor(n / 2 ** level) % 2 === 1;
}

/**
 * The complete subtrees whose concatenation is [start, end), largest first. Proof ranges and tree
 * prefixes always start at a multiple of a power of two at least as large as their length, so
 * the decomposition follows the binary digits of the length; MTH of the range is the right fold
 * nodeHash(s1, nodeHash(s2, … sk)) over these nodes (RFC 9162 §2.1.1 applied recursively).
 */
export function completeSubtrees(range: LeafRange): NodeId[] {
  const nodes: NodeId[] = [];
  let position = range.start;
  let remaining = range.end - range.start;
  while (remaining > 0) {
    const exact = highestPowerOfTwoAtMost(remaining);
    if (position % exact !== 0) throw new RangeError(`range [${range.start}, ${range.end}) is not aligned to complete subtrees`);
    const level = Math.round(Math.log2(exact));
    nodes.push({ level, index: position / exact });
    position += exact;
    remaining -= exact;
  }
  return nodes;
}

/** The subtrees whose hashes form the inclusion proof of leaf `index` in a tree of `size` leaves (RFC 9162 §2.1.3.1 PATH), bottom first. */
export function inclusionRanges(index: number, size: number): LeafRange[] {
  assertSize(index, 'leaf index');
  assertSize(size, 'tree size');
  if (index >= size) throw new RangeError(`leaf index ${index} is outside a tree of size ${size}`);
  const path: LeafRange[] = [];
  let start = 0;
  let end = size;
  // PATH(m, D[n]) walks down from the root; the siblings it appends come out top first.
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (index < start + k) {
      path.push({ start: start + k, end });
      end = start + k;
    } else {
      path.push({ start, end: start + k });
      start += k;
    }
  }
  return path.reverse();
}

/**
 * The subtrees whose hashes form the consistency proof from `oldSize` to `newSize`
 * (RFC 9162 §2.1.4.1 PROOF = SUBPROOF(m, D[n], true)), in the RFC's order. Empty when the sizes
 * are equal or oldSize is 0 (the empty tree is consistent with every tree).
 */
export function consistencyRanges(oldSize: number, newSize: number): LeafRange[] {
  assertSize(oldSize, 'old size');
  assertSize(newSize, 'new size');
  if (oldSize > newSize) throw new RangeError(`old size ${oldSize} is larger than new size ${newSize}`);
  if (oldSize === 0 || oldSize === newSize) return [];
  const proof: LeafRange[] = [];
  let start = 0;
  let end = newSize;
  let m = oldSize;
  let complete = true; // the b flag of SUBPROOF
  // SUBPROOF(m, D[start:end], b): each step appends one sibling after the recursive part.
  while (m !== end - start) {
    const k = splitPoint(end - start);
    if (m <= k) {
      proof.push({ start: start + k, end });
      end = start + k;
    } else {
      proof.push({ start, end: start + k });
      start += k;
      m -= k;
      complete = false;
    }
  }
  if (!complete) proof.push({ start, end });
  return proof.reverse();
}
