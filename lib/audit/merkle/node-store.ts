import { foldRight, peakIds, type StoredNode } from './compact-range.js';
import { completeSubtrees, consistencyRanges, inclusionRanges, type LeafRange, type NodeId } from './tree-math.js';

/**
 * Where the hashes of complete subtrees live (PostgreSQL in phase 2, memory in tests). A node
 * (level, index) covers leaves [index·2^level, (index+1)·2^level) and is written once, when its
 * last leaf is appended (CompactRange.append returns it); it never changes afterwards, so any
 * past tree size can be proven from the same rows. Proofs and past roots need O(log n) nodes,
 * asked for in one call (one query).
 */
export interface NodeStore {
  /** The hashes of these complete subtrees, in the order asked; rejects when one is not stored. */
  getNodes(ids: readonly NodeId[]): Promise<Buffer[]>;
}

/** A node store that answers without waiting (memory). */
export interface SyncNodeStore {
  getNodesSync(ids: readonly NodeId[]): Buffer[];
}

export class MissingNodeError extends Error {
  override readonly name = 'MissingNodeError';
  constructor(readonly node: NodeId) {
    super(`Merkle node level ${node.level} index ${node.index} is not stored (is the tree that large yet?)`);
  }
}

/** The nodes that make up some leaf ranges, and how to fold their hashes back into one hash per range. */
export interface NodePlan {
  ids: NodeId[];
  assemble(hashes: readonly Buffer[]): Buffer[];
}

/** Plans the lookups for the MTH of each range: every range is one or more complete subtrees, folded right. */
export function planRanges(ranges: readonly LeafRange[]): NodePlan {
  const parts = ranges.map((range) => completeSubtrees(range));
  const ids = parts.flat();
  return {
    ids,
    assemble(hashes) {
      if (hashes.length !== ids.length) throw new RangeError(`expected ${ids.length} node hashes, got ${hashes.length}`);
      let offset = 0;
      return parts.map((nodes) => {
        const slice = hashes.slice(offset, offset + nodes.length);
        offset += nodes.length;
        return foldRight(slice);
      });
    },
  };
}

/** RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in the tree of `size` leaves, from stored nodes. */
export async function inclusionProof(store: NodeStore, index: number, size: number): Promise<Buffer[]> {
  const plan = planRanges(inclusionRanges(index, size));
  return plan.assemble(await store.getNodes(plan.ids));
}

/** RFC 9162 §2.1.4.1 consistency proof from `oldSize` to `newSize`, from stored nodes. */
export async function consistencyProof(store: NodeStore, oldSize: number, newSize: number): Promise<Buffer[]> {
  const plan = planRanges(consistencyRanges(oldSize, newSize));
  return plan.assemble(await store.getNodes(plan.ids));
}

/** The root of the tree of `size` leaves (any size up to what is stored), from stored nodes. */
export async function rootAt(store: NodeStore, size: number): Promise<Buffer> {
  return foldRight(await store.getNodes(peakIds(size)));
}

export function inclusionProofSync(store: SyncNodeStore, index: number, size: number): Buffer[] {
  const plan = planRanges(inclusionRanges(index, size));
  return plan.assemble(store.getNodesSync(plan.ids));
}

export function consistencyProofSync(store: SyncNodeStore, oldSize: number, newSize: number): Buffer[] {
  const plan = planRanges(consistencyRanges(oldSize, newSize));
  return plan.assemble(store.getNodesSync(plan.ids));
}

export function rootAtSync(store: SyncNodeStore, size: number): Buffer {
  return foldRight(store.getNodesSync(peakIds(size)));
}

/** Every complete subtree in arrays per level: for tests, tools and a log small enough for memory. */
export class MemoryNodeStore implements NodeStore, SyncNodeStore {
  private readonly levels: Buffer[][] = [];

  /** Saves nodes as CompactRange.append returns them (each level fills left to right). */
  put(nodes: readonly StoredNode[]): void {
    for (const node of nodes) {
      const level = (this.levels[node.level] ??= []);
      if (node.index !== level.length) throw new RangeError(`node level ${node.level} index ${node.index} is out of order (expected index ${level.length})`);
      level.push(node.hash);
    }
  }

  getNodesSync(ids: readonly NodeId[]): Buffer[] {
    return ids.map((id) => {
      const hash = this.levels[id.level]?.[id.index];
      if (hash === undefined) throw new MissingNodeError(id);
      return hash;
    });
  }

  async getNodes(ids: readonly NodeId[]): Promise<Buffer[]> {
    return this.getNodesSync(ids);
  }

  /** How many nodes are stored: about 2 per leaf. */
  get nodeCount(): number {
    return this.levels.reduce((sum, level) => sum + level.length, 0);
  }
}
