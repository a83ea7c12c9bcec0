import { isHash, nodeHash } from './hash.js';
import { assertSize, isPowerOfTwo } from './tree-math.js';

/** A proof, root or leaf hash that does not check out; the message says which rule failed. */
export class MerkleProofError extends Error {
  override readonly name = 'MerkleProofError';
}

const half = (n: number): number => Math.floor(n / 2);
const odd = (n: number): boolean => n % 2 === 1;

/**
 * RFC 9162 §2.1.3.2, step by step: the root that `proof` yields for `leafHash` at `index` in a tree
 * of `size` leaves. Throws MerkleProofError when the proof has the wrong length or shape.
 */
export function rootFromInclusionProof(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[]): Buffer {
  assertSize(index, 'leaf index');
  assertSize(size, 'tree size');
  // 1. leaf_index >= tree_size fails.
  if (index >= size) throw new MerkleProofError(`leaf index ${index} is outside a tree of size ${size}`);
  if (!isHash(leafHash)) throw new MerkleProofError('the leaf hash is not 32 bytes');
  // 2.-3.
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leafHash);
  // 4.
  for (const [position, p] of proof.entries()) {
    if (!isHash(p)) throw new MerkleProofError(`proof element ${position} is not 32 bytes`);
    // 4a. A proof longer than the path.
    if (sn === 0) throw new MerkleProofError(`the proof is too long for leaf ${index} in a tree of size ${size}`);
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 5. A proof shorter than the path.
  if (sn !== 0) throw new MerkleProofError(`the proof is too short for leaf ${index} in a tree of size ${size}`);
  return r;
}

/** RFC 9162 §2.1.3.2: throws MerkleProofError unless `proof` proves `leafHash` is leaf `index` of the tree with `root`. */
export function assertInclusion(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): void {
  if (!isHash(root)) throw new MerkleProofError('the root hash is not 32 bytes');
  const computed = rootFromInclusionProof(index, size, leafHash, proof);
  if (!computed.equals(root)) throw new MerkleProofError(`the proof for leaf ${index} leads to another root than the tree of size ${size} has`);
}

export function verifyInclusion(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  try {
    assertInclusion(index, size, leafHash, proof, root);
    return true;
  } catch (error) {
    if (error instanceof MerkleProofError || error instanceof RangeError) return false;
    throw error;
  }
}

/**
 * RFC 9162 §2.1.4.2: throws MerkleProofError unless `proof` shows the tree of `oldSize` leaves with
 * `oldRoot` is a prefix of the tree of `newSize` leaves with `newRoot`. The RFC algorithm needs
 * 0 < first < second; the two edge cases are handled as C2SP tlog-witness and RFC 9162 §2.1.4.1
 * define them: equal sizes need an empty proof and equal roots, and the empty tree (size 0) is
 * consistent with every tree with an empty proof.
 */
export function assertConsistency(oldSize: number, newSize: number, oldRoot: Uint8Array, newRoot: Uint8Array, proof: readonly Uint8Array[]): void {
  assertSize(oldSize, 'old size');
  assertSize(newSize, 'new size');
  if (!isHash(oldRoot)) throw new MerkleProofError('the old root hash is not 32 bytes');
  if (!isHash(newRoot)) throw new MerkleProofError('the new root hash is not 32 bytes');
  if (oldSize > newSize) throw new MerkleProofError(`old size ${oldSize} is larger than new size ${newSize}`);
  if (oldSize === newSize) {
    if (proof.length !== 0) throw new MerkleProofError('a consistency proof between equal sizes must be empty');
    if (!Buffer.from(oldRoot).equals(newRoot)) throw new MerkleProofError(`two different roots for the same size ${oldSize}`);
    return;
  }
  if (oldSize === 0) {
    if (proof.length !== 0) throw new MerkleProofError('a consistency proof from the empty tree must be empty');
    return;
  }
  // 1. An empty path fails.
  if (proof.length === 0) throw new MerkleProofError(`the consistency proof from ${oldSize} to ${newSize} is empty`);
  for (const [position, c] of proof.entries()) {
    if (!isHash(c)) throw new MerkleProofError(`proof element ${position} is not 32 bytes`);
  }
  // 2. If first is an exact power of 2, prepend first_hash.
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : [...proof];
  // 3.
  let fn = oldSize - 1;
  let sn = newSize - 1;
  // 4.
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // 5.
  let fr: Buffer = Buffer.from(path[0]!);
  let sr: Buffer = Buffer.from(path[0]!);
  // 6.
  for (const c of path.slice(1)) {
    if (sn === 0) throw new MerkleProofError(`the consistency proof from ${oldSize} to ${newSize} is too long`);
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 7.
  if (sn !== 0) throw new MerkleProofError(`the consistency proof from ${oldSize} to ${newSize} is too short`);
  if (!fr.equals(oldRoot)) throw new MerkleProofError(`the consistency proof does not lead to the old root of size ${oldSize}`);
  if (!sr.equals(newRoot)) throw new MerkleProofError(`the consistency proof does not lead to the new root of size ${newSize}`);
}

export function verifyConsistency(oldSize: number, newSize: number, oldRoot: Uint8Array, newRoot: Uint8Array, proof: readonly Uint8Array[]): boolean {
  try {
    assertConsistency(oldSize, newSize, oldRoot, newRoot, proof);
    return true;
  } catch (error) {
    if (error instanceof MerkleProofError || error instanceof RangeError) return false;
    throw error;
  }
}
