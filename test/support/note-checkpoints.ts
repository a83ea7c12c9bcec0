import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { NoteCheckpointRecord } from '../../lib/audit/checkpoint-record.js';
import { parseExportLine } from '../../lib/audit/export-format.js';
import { MemoryMerkleTree } from '../../lib/audit/merkle/memory-tree.js';
import { signNote, type NoteSigner } from '../../lib/audit/note/signer.js';
import { formatCheckpoint } from '../../lib/audit/note/tlog-checkpoint.js';
import { ecdsaNoteSigner, ed25519NoteSigner } from '../../lib/keys/note-signers.js';
import { LocalAuditSigner } from '../../lib/keys/local-audit-signer.js';
import type { RevealApp } from '../../services/reveal-api/app.js';

/** A log's keys as the service holds them: the ECDSA P-256 audit key and an Ed25519 key. */
export interface TestLogKeys {
  origin: string;
  audit: LocalAuditSigner;
  publicKey: KeyObject;
  signers: NoteSigner[];
}

export function testLogKeys(origin = 'test.example/tokenvault/audit'): TestLogKeys {
  const audit = LocalAuditSigner.fromKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
  const ed25519 = ed25519NoteSigner(origin, generateKeyPairSync('ed25519').privateKey);
  return { origin, audit, publicKey: audit.publicKey, signers: [ecdsaNoteSigner(origin, audit), ed25519] };
}

/** A signed note record over a tree of `size` synthetic leaves (leaf i = "leaf i"), with an optional consistency proof from `fromSize`. */
export async function noteRecord(keys: TestLogKeys, index: number, size: number, options: { fromSize?: number; time?: string; tree?: MemoryMerkleTree } = {}): Promise<NoteCheckpointRecord> {
  const tree = options.tree ?? syntheticTree(size);
  const note = await signNote(formatCheckpoint({ origin: keys.origin, size, rootHash: tree.root(size), extensions: [] }), keys.signers);
  return {
    kind: 'note',
    index,
    time: options.time ?? new Date(Date.UTC(2026, 0, 1, 0, index)).toISOString(),
    note,
    ...(options.fromSize === undefined ? {} : { consistency: { fromSize: options.fromSize, proof: tree.consistencyProof(options.fromSize, size) } }),
  };
}

export function syntheticTree(size: number): MemoryMerkleTree {
  const tree = new MemoryMerkleTree();
  for (let i = 0; i < size; i += 1) tree.appendLeaf(Buffer.from(`leaf ${i}`));
  return tree;
}

/** The signed-note records in a published JSON-lines file (as the file sink writes it); none when it does not exist yet. */
export async function publishedNoteRecords(file: string): Promise<NoteCheckpointRecord[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line, index) => parseExportLine(line, index + 1))
    .flatMap((line) => (line.type === 'checkpoint' && line.record.kind === 'note' ? [line.record] : []));
}

/** Waits (at most ~4 s) until the app's publisher has handed every stored checkpoint to its sinks: it runs after the commit. */
export async function settlePublication(app: RevealApp): Promise<void> {
  for (let attempt = 0; attempt < 200 && (await app.revealMetrics.auditSinkPending.get()).values.some((value) => value.value > 0); attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
