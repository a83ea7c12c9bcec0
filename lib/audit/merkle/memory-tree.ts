import { CompactRange } from './compact-range.js';
import { leafHash } from './hash.js';
import { consistencyProofSync, inclusionProofSync, MemoryNodeStore, rootAtSync } from './node-store.js';

/**
 * A whole RFC 9162 tree in memory: the compact range for appends and the current root, the node
 * store for proofs and past roots. For tests, benchmarks and tools; the service keeps its nodes in
 * PostgreSQL behind the same NodeStore interface.
 */
export class MemoryMerkleTree {
  readonly store = new MemoryNodeStore();
  private readonly range = CompactRange.empty();

  get size(): number {
    return this.range.size;
  }

  /** Appends a leaf given its bytes (hashed with leafHash); returns its index. */
  appendLeaf(leaf: Uint8Array): number {
    return this.appendLeafHash(leafHash(leaf));
  }

  appendLeafHash(hash: Uint8Array): number {
    const index = this.range.size;
    this.store.put(this.range.append(hash));
    return index;
  }

  /** The root of the tree of `size` leaves (default: all). */
  root(size = this.size): Buffer {
    return size === this.size ? this.range.root() : rootAtSync(this.store, size);
  }

  inclusionProof(index: number, size = this.size): Buffer[] {
    return inclusionProofSync(this.store, index, this.checkSize(size));
  }

  consistencyProof(oldSize: number, newSize = this.size): Buffer[] {
    return consistencyProofSync(this.store, oldSize, this.checkSize(newSize));
  }

  private checkSize(size: number): number {
    if (size > this.size) throw new RangeError(`the tree has ${this.size} leaves, not ${size}`);
    return size;
  }
}
