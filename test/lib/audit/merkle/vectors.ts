/**
 * Published RFC 6962 / RFC 9162 known-answer vectors, pinned byte for byte with their source.
 * RFC 9162 kept RFC 6962's tree hashing (SHA-256, 0x00 leaf prefix, 0x01 node prefix), so the
 * vectors the Certificate Transparency and transparency-dev code bases share apply unchanged.
 */

const hex = (value: string): Buffer => Buffer.from(value, 'hex');
const b64 = (value: string): Buffer => Buffer.from(value, 'base64');

/**
 * github.com/transparency-dev/merkle rfc6962/rfc6962_test.go TestRFC6962Hasher
 * (commit 417fb0c314750d94e53942e9f92e79b6d35915db).
 */
export const HASHER_VECTORS = {
  emptyRoot: hex('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'),
  emptyLeaf: hex('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d'),
  /** leafHash("L123456") */
  leafL123456: hex('395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56'),
  /** nodeHash("N123", "N456") */
  nodeN123N456: hex('aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb'),
};

/**
 * github.com/transparency-dev/merkle testonly/constants.go (LeafInputs, NodeHashes, RootHashes),
 * the leaves and hashes of the Certificate Transparency reference tree (first in Go's
 * certificate-transparency-go and Trillian merkle tests).
 */
export const LEAF_INPUTS: Buffer[] = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(hex);

/** NODE_HASHES[level][index]: every complete subtree of the 8-leaf tree. */
export const NODE_HASHES: Buffer[][] = [
  [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
    '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
    '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
    'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
    '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1',
  ],
  [
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
  ],
  ['d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4'],
  ['5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'],
].map((level) => level.map(hex));

/** ROOT_HASHES[size] for sizes 0..8. */
export const ROOT_HASHES: Buffer[] = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
].map(hex);

/**
 * github.com/transparency-dev/merkle cmd/proofgen/main.go `inclusionProofs` (the generator of
 * testdata/inclusion/*), over LEAF_INPUTS. The source numbers leaves from 1; `index` here is
 * 0-based (its testdata JSON writes leafIdx = index).
 */
export const INCLUSION_VECTORS: { index: number; size: number; proof: Buffer[] }[] = [
  { index: 0, size: 1, proof: [] },
  {
    index: 0,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ].map(hex),
  },
  {
    index: 5,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ].map(hex),
  },
  { index: 2, size: 3, proof: [hex('fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125')] },
  {
    index: 1,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ].map(hex),
  },
];

/** github.com/transparency-dev/merkle cmd/proofgen/main.go `consistencyProofs` (the generator of testdata/consistency/*). */
export const CONSISTENCY_VECTORS: { oldSize: number; newSize: number; proof: Buffer[] }[] = [
  { oldSize: 1, newSize: 1, proof: [] },
  {
    oldSize: 1,
    newSize: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ].map(hex),
  },
  {
    oldSize: 6,
    newSize: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ].map(hex),
  },
  {
    oldSize: 2,
    newSize: 5,
    proof: ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b'].map(hex),
  },
  {
    oldSize: 6,
    newSize: 7,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ].map(hex),
  },
];

/** cmd/proofgen/main.go `sha256SomeHash`: an arbitrary 32-byte value used by the negative probes. */
export const SOME_HASH = hex('abacaba000000000000000000000000000000000000000000060061e00123456');

/**
 * testdata/inclusion/1/happy-path.json of github.com/transparency-dev/merkle, verbatim (base64 as
 * in the file): the probe format other implementations are checked against.
 */
export const INCLUSION_PROBE_HAPPY_PATH = {
  leafIdx: 0,
  treeSize: 8,
  root: b64('XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg='),
  leafHash: b64('bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0='),
  proof: ['lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=', 'Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=', 'a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ='].map(b64),
};

/**
 * github.com/transparency-dev/witness witness/witness_test.go (commit
 * 54dbcdd14f829a301b24b59f7c547c7dceebafa8): a log "monkeys" at size 5 (mInit) and 8 (mNext)
 * with the consistency proof between them (consProof). Root hashes are the third line of each
 * checkpoint; the signed notes themselves are pinned in the note tests.
 */
export const WITNESS_TEST_CONSISTENCY = {
  oldSize: 5,
  newSize: 8,
  oldRoot: b64('41smjBUiAU70EtKlT6lIOIYtRTYxYXsDB+XHfcvu/BE='),
  newRoot: b64('V8K9aklZ4EPB+RMOk1/8VsJUdFZR77GDtZUQq84vSbo='),
  proof: [
    'b9e1d62618f7fee8034e4c5010f727ab24d8e4705cb296c374bf2025a87a10d2',
    'aac66cd7a79ce4012d80762fe8eec3a77f22d1ca4145c3f4cee022e7efcd599d',
    '89d0f753f66a290c483b39cd5e9eafb12021293395fad3d4a2ad053cfbcfdc9e',
    '29e40bb79c966f4c6fe96aff6f30acfce5f3e8d84c02215175d6e018a5dee833',
  ].map(hex),
};
