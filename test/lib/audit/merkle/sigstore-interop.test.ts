import { generateKeyPairSync } from 'node:crypto';
// @sigstore/verify has no "exports" map; these are the modules its Verifier uses for Rekor entries.
import { verifyTLogInclusion } from '@sigstore/verify/dist/tlog/index.js';
import { LogCheckpoint } from '@sigstore/verify/dist/tlog/checkpoint.js';
import { verifyMerkleInclusion } from '@sigstore/verify/dist/tlog/merkle.js';
import { describe, expect, it } from 'vitest';
import { chainHash, type AuditContent } from '../../../../lib/audit/chain.js';
import { auditLeaf } from '../../../../lib/audit/merkle/audit-leaf.js';
import { MemoryMerkleTree } from '../../../../lib/audit/merkle/memory-tree.js';
import { keyIdOfEcdsaKey } from '../../../../lib/audit/note/vkey.js';
import { signNote, type NoteSigner } from '../../../../lib/audit/note/signer.js';
import { formatCheckpoint } from '../../../../lib/audit/note/tlog-checkpoint.js';
import { LocalAuditSigner } from '../../../../lib/keys/local-audit-signer.js';
import { ecdsaNoteSigner, ed25519NoteSigner } from '../../../../lib/keys/note-signers.js';

/**
 * Interop: Sigstore's verifier (npm @sigstore/verify, the code npm uses to check package
 * provenance against Rekor) must accept our inclusion proofs, root hashes and signed checkpoints.
 * verifyTLogInclusion is what its Verifier runs for a Rekor entry with an inclusion proof: it
 * verifies the checkpoint note's signature with the log's key (key hint = first 4 bytes of the
 * log ID, i.e. our type 0x02 key ID) and then the RFC 6962 inclusion of SHA-256(0x00 || body).
 */
type Entry = Parameters<typeof verifyTLogInclusion>[0];
type Authority = Parameters<typeof verifyTLogInclusion>[1][number];

const ORIGIN = 'example.com/tokenvault/audit';

function auditRows(count: number): AuditContent[] {
  const rows: AuditContent[] = [];
  let prevHash: Buffer | null = null;
  for (let seq = 1; seq <= count; seq += 1) {
    const row: AuditContent = {
      seq, occurredAt: new Date(Date.UTC(2026, 0, 2, 3, 4, seq)).toISOString(), action: 'reveal', actor: `user-${seq % 7}`, roles: ['investigator'],
      clientAddress: '10.0.0.7', requestId: `req-${seq}`, purpose: 'fraud case 4711', ticket: null, tokens: [`ip_v1_${String(seq).padStart(43, 'A')}`],
      fieldCounts: { ip: 1 }, outcome: seq % 5 === 0 ? 'denied' : 'allowed', reason: null, prevHash,
    };
    rows.push(row);
    prevHash = chainHash(row);
  }
  return rows;
}

function entryFor(tree: MemoryMerkleTree, leaves: Buffer[], index: number, size: number, note: string, logId: Buffer): Entry {
  return {
    logIndex: String(index),
    logId: { keyId: logId },
    kindVersion: { kind: 'hashedrekord', version: '0.0.1' },
    integratedTime: '0',
    canonicalizedBody: leaves[index]!,
    inclusionProof: { logIndex: String(index), rootHash: tree.root(size), treeSize: String(size), hashes: tree.inclusionProof(index, size), checkpoint: { envelope: note } },
  } as Entry;
}

async function checkpointNote(tree: MemoryMerkleTree, size: number, signer: NoteSigner): Promise<string> {
  return signNote(formatCheckpoint({ origin: ORIGIN, size, rootHash: tree.root(size), extensions: [] }), [signer]);
}

const rows = auditRows(75);
const leaves = rows.map(auditLeaf);
const tree = new MemoryMerkleTree();
for (const leaf of leaves) tree.appendLeaf(leaf);

describe('interop with @sigstore/verify (Rekor inclusion proofs)', () => {
  it('accepts our inclusion proof and root for every leaf of every tree size up to 75 audit rows', () => {
    for (let size = 1; size <= leaves.length; size += 1) {
      const checkpoint = LogCheckpoint.fromString(`${ORIGIN}\n${size}\n${tree.root(size).toString('base64')}\n`);
      for (let index = 0; index < size; index += 1) {
        expect(() => verifyMerkleInclusion(entryFor(tree, leaves, index, size, '', Buffer.alloc(32)) as never, checkpoint), `${index}@${size}`).not.toThrow();
      }
    }
  });

  it('accepts our ECDSA P-256 signed checkpoint note and proof end to end (signature, then inclusion)', async () => {
    const audit = LocalAuditSigner.fromKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
    const signer = ecdsaNoteSigner(ORIGIN, audit);
    const logId = Buffer.from(audit.keyId, 'hex'); // SHA-256 of the DER SPKI: Rekor's log ID
    expect(logId.readUInt32BE(0)).toBe(keyIdOfEcdsaKey(audit.publicKey.export({ type: 'spki', format: 'der' })));
    const authority: Authority = { logID: logId, baseURL: `https://${ORIGIN}`, publicKey: audit.publicKey, validFor: { start: new Date(0), end: new Date(8.64e15) } };
    for (const size of [1, 2, 3, 8, 31, 64, 75]) {
      const note = await checkpointNote(tree, size, signer);
      for (const index of new Set([0, Math.floor(size / 2), size - 1])) {
        expect(() => verifyTLogInclusion(entryFor(tree, leaves, index, size, note, logId), [authority]), `${index}@${size}`).not.toThrow();
      }
    }
  });

  it('accepts our Ed25519 signed checkpoint note (type 0x01) as well', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const signer = ed25519NoteSigner(ORIGIN, privateKey);
    const logId = Buffer.alloc(32);
    logId.writeUInt32BE(signer.keyId, 0);
    const authority: Authority = { logID: logId, baseURL: `https://${ORIGIN}`, publicKey, validFor: { start: new Date(0), end: new Date(8.64e15) } };
    const note = await checkpointNote(tree, 75, signer);
    expect(() => verifyTLogInclusion(entryFor(tree, leaves, 42, 75, note, logId), [authority])).not.toThrow();
  });

  it('rejects (so the acceptance above means something) an edited row, a changed proof, another size and another key', async () => {
    const audit = LocalAuditSigner.fromKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
    const logId = Buffer.from(audit.keyId, 'hex');
    const authority: Authority = { logID: logId, baseURL: `https://${ORIGIN}`, publicKey: audit.publicKey, validFor: { start: new Date(0), end: new Date(8.64e15) } };
    const note = await checkpointNote(tree, 75, ecdsaNoteSigner(ORIGIN, audit));
    const good = entryFor(tree, leaves, 10, 75, note, logId);
    expect(() => verifyTLogInclusion(good, [authority])).not.toThrow();

    const edited = { ...good, canonicalizedBody: Buffer.from(leaves[10]!.toString().replace('fraud case 4711', 'fraud case 4712')) } as Entry;
    expect(() => verifyTLogInclusion(edited, [authority])).toThrow(/root hash does not match/);
    const hashes = tree.inclusionProof(10, 75);
    hashes[2] = Buffer.alloc(32);
    const changedProof = { ...good, inclusionProof: { ...good.inclusionProof!, hashes } } as Entry;
    expect(() => verifyTLogInclusion(changedProof, [authority])).toThrow(/root hash does not match/);
    const otherSize = entryFor(tree, leaves, 10, 74, note, logId);
    expect(() => verifyTLogInclusion(otherSize, [authority])).toThrow();
    const stranger = LocalAuditSigner.fromKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
    const forged = entryFor(tree, leaves, 10, 75, await checkpointNote(tree, 75, ecdsaNoteSigner(ORIGIN, stranger)), logId);
    expect(() => verifyTLogInclusion(forged, [authority])).toThrow(/invalid checkpoint signature/);
  });
});
