import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { auditLeaf, auditLeafHash, leafIndexOfSeq } from '../../../../lib/audit/merkle/audit-leaf.js';
import { CompactRange, peakIds } from '../../../../lib/audit/merkle/compact-range.js';
import { EMPTY_ROOT, leafHash, nodeHash } from '../../../../lib/audit/merkle/hash.js';
import { MemoryMerkleTree } from '../../../../lib/audit/merkle/memory-tree.js';
import { consistencyProof, inclusionProof, MissingNodeError, rootAt, type NodeStore } from '../../../../lib/audit/merkle/node-store.js';
import { consistencyRanges, inclusionRanges, splitPoint, type NodeId } from '../../../../lib/audit/merkle/tree-math.js';
import { assertConsistency, MerkleProofError, verifyConsistency, verifyInclusion } from '../../../../lib/audit/merkle/verify.js';
import { VECTOR_ROWS } from '../vectors.js';
import {
  CONSISTENCY_VECTORS,
  HASHER_VECTORS,
  INCLUSION_PROBE_HAPPY_PATH,
  INCLUSION_VECTORS,
  LEAF_INPUTS,
  NODE_HASHES,
  ROOT_HASHES,
  SOME_HASH,
  WITNESS_TEST_CONSISTENCY,
} from './vectors.js';

const hex = (buffers: readonly Buffer[]) => buffers.map((buffer) => buffer.toString('hex'));

function referenceTree(count: number): MemoryMerkleTree {
  const tree = new MemoryMerkleTree();
  for (let i = 0; i < count; i += 1) tree.appendLeaf(Buffer.from(`leaf ${i}`));
  return tree;
}

/** RFC 9162 §2.1.1 MTH, written as the recursive definition over leaf hashes (slow, obviously right). */
function mth(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return createHash('sha256').digest();
  if (leaves.length === 1) return leaves[0]!;
  const k = 2 ** Math.floor(Math.log2(leaves.length - 1));
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

/** RFC 9162 §2.1.3.1 PATH(m, D[n]) as written. */
function referencePath(m: number, leaves: readonly Buffer[]): Buffer[] {
  if (leaves.length <= 1) return [];
  const k = 2 ** Math.floor(Math.log2(leaves.length - 1));
  if (m < k) return [...referencePath(m, leaves.slice(0, k)), mth(leaves.slice(k))];
  return [...referencePath(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}

/** RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b) as written. */
function referenceSubproof(m: number, leaves: readonly Buffer[], complete: boolean): Buffer[] {
  if (m === leaves.length) return complete ? [] : [mth(leaves)];
  const k = 2 ** Math.floor(Math.log2(leaves.length - 1));
  if (m <= k) return [...referenceSubproof(m, leaves.slice(0, k), complete), mth(leaves.slice(k))];
  return [...referenceSubproof(m - k, leaves.slice(k), false), mth(leaves.slice(0, k))];
}

describe('RFC 9162 Merkle tree hashing', () => {
  it('matches the published hasher vectors (empty tree, empty leaf, leaf, node)', () => {
    expect(EMPTY_ROOT.equals(HASHER_VECTORS.emptyRoot)).toBe(true);
    expect(leafHash(Buffer.alloc(0)).equals(HASHER_VECTORS.emptyLeaf)).toBe(true);
    expect(leafHash(Buffer.from('L123456')).equals(HASHER_VECTORS.leafL123456)).toBe(true);
    expect(nodeHash(Buffer.from('N123'), Buffer.from('N456')).equals(HASHER_VECTORS.nodeN123N456)).toBe(true);
  });

  it('builds every node hash and every root of the 8-leaf reference tree', () => {
    const tree = new MemoryMerkleTree();
    expect(tree.root().equals(ROOT_HASHES[0]!)).toBe(true);
    LEAF_INPUTS.forEach((leaf, index) => {
      tree.appendLeaf(leaf);
      expect(tree.root().toString('hex'), `root of size ${index + 1}`).toBe(ROOT_HASHES[index + 1]!.toString('hex'));
    });
    NODE_HASHES.forEach((level, levelIndex) =>
      level.forEach((hash, index) => expect(tree.store.getNodesSync([{ level: levelIndex, index }])[0]!.toString('hex')).toBe(hash.toString('hex'))),
    );
    // Past roots come from stored nodes only.
    for (let size = 0; size <= 8; size += 1) expect(tree.root(size).toString('hex')).toBe(ROOT_HASHES[size]!.toString('hex'));
  });

  it('generates exactly the published inclusion proofs and accepts them', () => {
    const tree = new MemoryMerkleTree();
    LEAF_INPUTS.forEach((leaf) => tree.appendLeaf(leaf));
    for (const vector of INCLUSION_VECTORS) {
      expect(hex(tree.inclusionProof(vector.index, vector.size)), `${vector.index}@${vector.size}`).toEqual(hex(vector.proof));
      expect(verifyInclusion(vector.index, vector.size, leafHash(LEAF_INPUTS[vector.index]!), vector.proof, ROOT_HASHES[vector.size]!)).toBe(true);
    }
    const probe = INCLUSION_PROBE_HAPPY_PATH;
    expect(verifyInclusion(probe.leafIdx, probe.treeSize, probe.leafHash, probe.proof, probe.root)).toBe(true);
  });

  it('rejects every corrupted inclusion probe of the published generator', () => {
    for (const vector of INCLUSION_VECTORS) {
      const root = ROOT_HASHES[vector.size]!;
      const leaf = leafHash(LEAF_INPUTS[vector.index]!);
      const { index, size, proof } = vector;
      // The mutations of transparency-dev/merkle cmd/proofgen invalidInclusionProof.
      const probes: [string, number, number, Uint8Array, Uint8Array[], Uint8Array][] = [
        ['index - 1', index - 1, size, leaf, proof, root],
        ['index + 1', index + 1, size, leaf, proof, root],
        ['index xor 2', index ^ 2, size, leaf, proof, root],
        ['size * 2', index, size * 2, leaf, proof, root],
        ['size / 2', index, Math.floor(size / 2), leaf, proof, root],
        ['wrong leaf', index, size, Buffer.from('WrongLeaf'), proof, root],
        ['empty root', index, size, leaf, proof, EMPTY_ROOT],
        ['random root', index, size, leaf, proof, SOME_HASH],
        ['trailing garbage', index, size, leaf, [...proof, Buffer.alloc(0)], root],
        ['trailing root', index, size, leaf, [...proof, root], root],
        ['preceding garbage', index, size, leaf, [Buffer.alloc(0), ...proof], root],
        ['preceding root', index, size, leaf, [root, ...proof], root],
        ...proof.map((_, i): [string, number, number, Uint8Array, Uint8Array[], Uint8Array] => {
          const flipped = proof.map((element) => Buffer.from(element));
          flipped[i]![0]! ^= 8;
          return [`bit flip in proof[${i}]`, index, size, leaf, flipped, root];
        }),
      ];
      if (proof.length > 0) probes.push(['removed component', index, size, leaf, proof.slice(0, -1), root]);
      if (proof.length > 1) probes.push(['inserted component', index, size, leaf, [proof[0]!, SOME_HASH, ...proof.slice(1)], root]);
      for (const [name, probeIndex, probeSize, probeLeaf, probeProof, probeRoot] of probes) {
        expect(verifyInclusion(probeIndex, probeSize, probeLeaf, probeProof, probeRoot), `${name} (${index}@${size})`).toBe(false);
      }
    }
  });

  it('generates exactly the published consistency proofs and accepts them', () => {
    const tree = new MemoryMerkleTree();
    LEAF_INPUTS.forEach((leaf) => tree.appendLeaf(leaf));
    for (const vector of CONSISTENCY_VECTORS) {
      expect(hex(tree.consistencyProof(vector.oldSize, vector.newSize)), `${vector.oldSize}->${vector.newSize}`).toEqual(hex(vector.proof));
      expect(verifyConsistency(vector.oldSize, vector.newSize, ROOT_HASHES[vector.oldSize]!, ROOT_HASHES[vector.newSize]!, vector.proof)).toBe(true);
    }
    const witness = WITNESS_TEST_CONSISTENCY;
    expect(verifyConsistency(witness.oldSize, witness.newSize, witness.oldRoot, witness.newRoot, witness.proof)).toBe(true);
  });

  it('rejects every corrupted consistency probe of the published generator', () => {
    const cases = [
      ...CONSISTENCY_VECTORS.map((vector) => ({ ...vector, oldRoot: ROOT_HASHES[vector.oldSize]!, newRoot: ROOT_HASHES[vector.newSize]! })),
      WITNESS_TEST_CONSISTENCY,
    ].filter((vector) => vector.proof.length > 0);
    for (const { oldSize, newSize, oldRoot, newRoot, proof } of cases) {
      const wrongRoot = Buffer.from('WrongRoot');
      // The mutations of transparency-dev/merkle cmd/proofgen invalidConsistencyProof.
      const probes: [string, number, number, Uint8Array, Uint8Array, Uint8Array[]][] = [
        ['old size - 1', oldSize - 1, newSize, oldRoot, newRoot, proof],
        ['old size + 1', oldSize + 1, newSize, oldRoot, newRoot, proof],
        ['old size xor 2', oldSize ^ 2, newSize, oldRoot, newRoot, proof],
        ['new size * 2', oldSize, newSize * 2, oldRoot, newRoot, proof],
        ['new size / 2', oldSize, Math.floor(newSize / 2), oldRoot, newRoot, proof],
        ['wrong old root', oldSize, newSize, wrongRoot, newRoot, proof],
        ['wrong new root', oldSize, newSize, oldRoot, wrongRoot, proof],
        ['swapped roots', oldSize, newSize, newRoot, oldRoot, proof],
        ['empty proof', oldSize, newSize, oldRoot, newRoot, []],
        ['trailing garbage', oldSize, newSize, oldRoot, newRoot, [...proof, Buffer.alloc(0)]],
        ['trailing old root', oldSize, newSize, oldRoot, newRoot, [...proof, oldRoot]],
        ['trailing new root', oldSize, newSize, oldRoot, newRoot, [...proof, newRoot]],
        ['preceding garbage', oldSize, newSize, oldRoot, newRoot, [Buffer.alloc(0), ...proof]],
        ['preceding old root', oldSize, newSize, oldRoot, newRoot, [oldRoot, ...proof]],
        ['preceding new root', oldSize, newSize, oldRoot, newRoot, [newRoot, ...proof]],
        ['preceding proof[0]', oldSize, newSize, oldRoot, newRoot, [proof[0]!, ...proof]],
        ['truncated proof', oldSize, newSize, oldRoot, newRoot, proof.slice(0, -1)],
        ...proof.map((_, i): [string, number, number, Uint8Array, Uint8Array, Uint8Array[]] => {
          const flipped = proof.map((element) => Buffer.from(element));
          flipped[i]![0]! ^= 16;
          return [`bit flip in proof[${i}]`, oldSize, newSize, oldRoot, newRoot, flipped];
        }),
      ];
      for (const [name, m, n, r1, r2, p] of probes) {
        expect(verifyConsistency(m, n, r1, r2, p), `${name} (${oldSize}->${newSize})`).toBe(false);
      }
    }
  });

  it('handles the edge cases of consistency: equal sizes, the empty tree, time travel', () => {
    const root = ROOT_HASHES[3]!;
    expect(verifyConsistency(3, 3, root, root, [])).toBe(true);
    expect(verifyConsistency(3, 3, root, ROOT_HASHES[4]!, [])).toBe(false); // a fork at the same size
    expect(verifyConsistency(3, 3, root, root, [root])).toBe(false);
    expect(verifyConsistency(0, 5, EMPTY_ROOT, ROOT_HASHES[5]!, [])).toBe(true);
    expect(verifyConsistency(0, 5, EMPTY_ROOT, ROOT_HASHES[5]!, [EMPTY_ROOT])).toBe(false);
    expect(verifyConsistency(5, 3, ROOT_HASHES[5]!, root, [])).toBe(false);
    expect(() => assertConsistency(3, 3, root, ROOT_HASHES[4]!, [])).toThrow(MerkleProofError);
    expect(() => assertConsistency(3, 3, root, ROOT_HASHES[4]!, [])).toThrow(/two different roots for the same size 3/);
  });

  it('agrees with the recursive RFC definitions for every leaf and size pair up to 64 leaves', () => {
    const count = 64;
    const tree = referenceTree(count);
    const leaves = Array.from({ length: count }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
    for (let size = 1; size <= count; size += 1) {
      const prefix = leaves.slice(0, size);
      const root = mth(prefix);
      expect(tree.root(size).equals(root), `root ${size}`).toBe(true);
      for (let index = 0; index < size; index += 1) {
        const proof = tree.inclusionProof(index, size);
        expect(hex(proof), `inclusion ${index}@${size}`).toEqual(hex(referencePath(index, prefix)));
        expect(verifyInclusion(index, size, leaves[index]!, proof, root)).toBe(true);
        // Another leaf at the same place must not verify.
        expect(verifyInclusion(index, size, leaves[(index + 1) % count]!, proof, root)).toBe(false);
      }
      for (let oldSize = 1; oldSize <= size; oldSize += 1) {
        const proof = tree.consistencyProof(oldSize, size);
        expect(hex(proof), `consistency ${oldSize}->${size}`).toEqual(hex(referenceSubproof(oldSize, prefix, true)));
        expect(verifyConsistency(oldSize, size, tree.root(oldSize), root, proof), `verify ${oldSize}->${size}`).toBe(true);
        if (oldSize < size) expect(verifyConsistency(oldSize, size, tree.root(oldSize), tree.root(size - 1), proof)).toBe(false);
      }
    }
  });

  it('computes proofs for trees beyond 2^32 leaves without 32-bit overflow', async () => {
    // A virtual tree whose leaves are all equal: every complete subtree of a level has the same hash.
    const levelHash: Buffer[] = [leafHash(Buffer.from('x'))];
    for (let level = 1; level <= 53; level += 1) levelHash.push(nodeHash(levelHash[level - 1]!, levelHash[level - 1]!));
    const store: NodeStore = { getNodes: async (ids: readonly NodeId[]) => ids.map((id) => levelHash[id.level]!) };
    const size = 2 ** 41 + 2 ** 33 + 3;
    const root = await rootAt(store, size);
    for (const index of [0, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 12345, size - 2, size - 1]) {
      const proof = await inclusionProof(store, index, size);
      expect(verifyInclusion(index, size, levelHash[0]!, proof, root), `leaf ${index}`).toBe(true);
      expect(verifyInclusion(index, size, SOME_HASH, proof, root), `leaf ${index} another leaf`).toBe(false);
    }
    for (const oldSize of [1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 7, 2 ** 41, size - 1]) {
      const proof = await consistencyProof(store, oldSize, size);
      expect(verifyConsistency(oldSize, size, await rootAt(store, oldSize), root, proof), `consistency ${oldSize}`).toBe(true);
    }
    expect(splitPoint(2 ** 52 + 1)).toBe(2 ** 52);
    expect(inclusionRanges(2 ** 40, 2 ** 41).length).toBe(41);
    expect(consistencyRanges(2 ** 40, 2 ** 41)).toEqual([{ start: 2 ** 40, end: 2 ** 41 }]);
  });
});

describe('CompactRange and the node store', () => {
  it('saves about two nodes per leaf: the leaf and the subtrees it completes', () => {
    const range = CompactRange.empty();
    let saved = 0;
    const count = 1000;
    for (let i = 0; i < count; i += 1) {
      const nodes = range.append(leafHash(Buffer.from(`leaf ${i}`)));
      expect(nodes[0]).toMatchObject({ level: 0, index: i });
      saved += nodes.length;
    }
    // Every complete subtree of a 1000-leaf tree exactly once: 2n − popcount(n).
    expect(saved).toBe(2 * count - count.toString(2).split('1').length + 1);
    expect(range.root().equals(referenceTree(count).root())).toBe(true);
  });

  it('resumes from the stored right edge and keeps producing the same roots', async () => {
    const tree = referenceTree(77);
    const peaks = await tree.store.getNodes(peakIds(77));
    const resumed = CompactRange.fromPeaks(77, peaks);
    const full = referenceTree(90);
    for (let i = 77; i < 90; i += 1) {
      resumed.append(leafHash(Buffer.from(`leaf ${i}`)));
      expect(resumed.root().equals(full.root(i + 1)), `size ${i + 1}`).toBe(true);
    }
    expect(() => CompactRange.fromPeaks(77, peaks.slice(1))).toThrow(/complete subtrees/);
  });

  it('serves proofs from stored nodes with one lookup batch of O(log n) nodes', async () => {
    const tree = referenceTree(1000);
    const asked: number[] = [];
    const counting: NodeStore = {
      getNodes: async (ids) => {
        asked.push(ids.length);
        return tree.store.getNodes(ids);
      },
    };
    expect(hex(await inclusionProof(counting, 700, 1000))).toEqual(hex(tree.inclusionProof(700, 1000)));
    expect(hex(await consistencyProof(counting, 555, 1000))).toEqual(hex(tree.consistencyProof(555, 1000)));
    expect((await rootAt(counting, 999)).equals(tree.root(999))).toBe(true);
    expect(asked).toHaveLength(3);
    for (const count of asked) expect(count).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(1000)));
  });

  it('refuses proofs for a size the store does not hold yet', async () => {
    const tree = referenceTree(10);
    await expect(inclusionProof(tree.store, 3, 11)).rejects.toBeInstanceOf(MissingNodeError);
    expect(() => tree.inclusionProof(3, 11)).toThrow(/has 10 leaves/);
    expect(() => tree.inclusionProof(10, 10)).toThrow(RangeError);
  });
});

describe('audit rows as leaves', () => {
  // Pinned by this project (computed here, checked with OpenSSL: printf '\x00%s' "$canonical" | openssl dgst -sha256).
  const LEAF_HASHES = [
    '0de0105491ce68b394d4e6e6557ee545d5f04001bca60d0261190fe73b33cae8',
    'e0968ca507ed64895f939297c441908a25f6bc639b2028a99f74ce8f4664aa16',
    'b7fd1408390897ee4f3ed79f368c8e5bc742cbff14d767a17deb4e7cd8ad725f',
  ];
  const ROOT_OF_THREE = '39afad433268dc540e676802532a8d106fd475ec08a979ef22a1b982797ae0ae';

  it('uses the canonical bytes of docs/audit-format.md §1.1 unchanged as the leaf', () => {
    for (const row of VECTOR_ROWS) expect(auditLeaf(row.content).toString('utf8')).toBe(row.canonical);
    expect(VECTOR_ROWS.map((row) => auditLeafHash(row.content).toString('hex'))).toEqual(LEAF_HASHES);
  });

  it('pins the root of the three vector rows and the inclusion proof of row 1', () => {
    const tree = new MemoryMerkleTree();
    for (const row of VECTOR_ROWS) tree.appendLeafHash(auditLeafHash(row.content));
    expect(tree.root().toString('hex')).toBe(ROOT_OF_THREE);
    expect(hex(tree.inclusionProof(leafIndexOfSeq(1)))).toEqual([LEAF_HASHES[1], LEAF_HASHES[2]]);
    expect(verifyInclusion(0, 3, Buffer.from(LEAF_HASHES[0]!, 'hex'), [LEAF_HASHES[1]!, LEAF_HASHES[2]!].map((h) => Buffer.from(h, 'hex')), Buffer.from(ROOT_OF_THREE, 'hex'))).toBe(true);
    expect(() => leafIndexOfSeq(0)).toThrow(RangeError);
  });
});
