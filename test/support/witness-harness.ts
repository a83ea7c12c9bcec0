import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { MemoryMerkleTree } from '../../lib/audit/merkle/memory-tree.js';
import { signNote, type NoteSigner } from '../../lib/audit/note/signer.js';
import { formatCheckpoint } from '../../lib/audit/note/tlog-checkpoint.js';
import { parseVerifierKey, type NoteVerifier } from '../../lib/audit/note/vkey.js';
import { formatAddCheckpointBody } from '../../lib/audit/witness-protocol.js';
import { ed25519Cosigner, ed25519NoteSigner } from '../../lib/keys/note-signers.js';
import { buildWitnessApp } from '../../services/witness/app.js';
import { WitnessStateStore } from '../../services/witness/state-store.js';

/** A log for tests: an in-memory tree whose checkpoints a local Ed25519 key signs. */
export class TestLog {
  readonly tree = new MemoryMerkleTree();
  readonly signer: NoteSigner;

  constructor(
    readonly origin: string,
    readonly key: KeyObject = generateKeyPairSync('ed25519').privateKey,
    private readonly leafPrefix = 'entry',
  ) {
    this.signer = ed25519NoteSigner(origin, key);
  }

  append(count: number): this {
    for (let i = 0; i < count; i += 1) this.tree.appendLeaf(Buffer.from(`${this.leafPrefix} ${this.tree.size}`));
    return this;
  }

  /** A log with the same key whose entries differ from `from` on: a fork by the key holder. */
  forkAt(from: number): TestLog {
    const fork = new TestLog(this.origin, this.key, 'forged');
    for (let i = 0; i < from; i += 1) fork.tree.appendLeaf(Buffer.from(`${this.leafPrefix} ${i}`));
    return fork;
  }

  checkpoint(size = this.tree.size): Promise<string> {
    return signNote(formatCheckpoint({ origin: this.origin, size, rootHash: this.tree.root(size), extensions: [] }), [this.signer]);
  }

  async body(oldSize: number, size = this.tree.size): Promise<string> {
    const proof = oldSize === 0 ? [] : this.tree.consistencyProof(oldSize, size);
    return formatAddCheckpointBody({ oldSize, proof, checkpoint: await this.checkpoint(size) });
  }
}

export interface WitnessHarness {
  url: string;
  dir: string;
  app: FastifyInstance;
  store: WitnessStateStore;
  cosigner: NoteSigner;
  cosignatureVerifier: NoteVerifier;
  post(body: string, headers?: Record<string, string>): Promise<{ status: number; type: string | null; text: string }>;
  /** A POST with no Content-Type header at all (fetch always adds one for a string body). */
  postWithoutContentType(body: string): Promise<number>;
  close(): Promise<void>;
}

/** The witness app on a real port, its state in a fresh directory. */
export async function startWitness(logs: Map<string, NoteVerifier[]>, dir?: string): Promise<WitnessHarness> {
  const dataDir = dir ?? (await mkdtemp(join(tmpdir(), 'tokenvault-witness-')));
  const store = await WitnessStateStore.open(dataDir);
  const cosigner = ed25519Cosigner('witness.test/w1', generateKeyPairSync('ed25519').privateKey);
  const app = await buildWitnessApp({ config: { logs, bodyLimitBytes: 64 * 1024, logLevel: 'silent' }, store, cosigner });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    dir: dataDir,
    app,
    store,
    cosigner,
    cosignatureVerifier: parseVerifierKey(cosigner.verifierKey),
    async post(body, headers = { 'content-type': 'text/plain' }) {
      const response = await fetch(`${url}/add-checkpoint`, { method: 'POST', headers, body });
      return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
    },
    postWithoutContentType(body) {
      const { hostname, port } = new URL(url);
      return new Promise<number>((resolve, reject) => {
        const req = request({ host: hostname, port, path: '/add-checkpoint', method: 'POST', headers: { 'content-length': Buffer.byteLength(body) } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(body);
      });
    },
    async close() {
      await app.close();
      await store.close();
      if (dir === undefined) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function logsOf(...logs: TestLog[]): Map<string, NoteVerifier[]> {
  return new Map(logs.map((log) => [log.origin, [parseVerifierKey(log.signer.verifierKey)]]));
}
