import { createHash } from 'node:crypto';

/** SHA-256 output size: every leaf, node and root hash of the tree is this long. */
export const HASH_SIZE = 32;

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/**
 * RFC 9162 §2.1.1: the hash of the empty tree is the hash of the empty string,
 * e3b0c442…b855. A checkpoint of size 0 carries it (C2SP tlog-witness requires it).
 */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

/** RFC 9162 §2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0)). The 0x00 prefix separates leaves from nodes (second-preimage resistance). */
export function leafHash(leaf: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(leaf).digest();
}

/** RFC 9162 §2.1.1: SHA-256(0x01 || MTH(left) || MTH(right)). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

/** True for a value that can be a hash of this tree (proof elements and roots are checked with it before use). */
export function isHash(value: Uint8Array): boolean {
  return value.length === HASH_SIZE;
}
