import type { FastifyBaseLogger } from 'fastify';
import { EMPTY_ROOT } from '../../lib/audit/merkle/hash.js';
import { assertConsistency, MerkleProofError } from '../../lib/audit/merkle/verify.js';
import { NoteError } from '../../lib/audit/note/errors.js';
import { openNote } from '../../lib/audit/note/open-note.js';
import type { NoteSigner } from '../../lib/audit/note/signer.js';
import { formatSignatureLine, parseSignedNote } from '../../lib/audit/note/signed-note.js';
import { parseCheckpoint, type Checkpoint } from '../../lib/audit/note/tlog-checkpoint.js';
import type { NoteVerifier } from '../../lib/audit/note/vkey.js';
import { AddCheckpointFormatError, parseAddCheckpointBody } from '../../lib/audit/witness-protocol.js';
import type { WitnessStateStore } from './state-store.js';

/** The outcome of one add-checkpoint request, as tlog-witness maps it onto HTTP. */
export type AddCheckpointOutcome =
  | { status: 200; cosignatures: string }
  | { status: 409; size: number }
  | { status: 400 | 403 | 404 | 422; code: string; message: string };

export interface WitnessOptions {
  /** Trusted log keys per origin. */
  logs: ReadonlyMap<string, readonly NoteVerifier[]>;
  store: WitnessStateStore;
  cosigner: NoteSigner;
  logger: FastifyBaseLogger;
  now?: () => number;
  onOutcome?: (status: number) => void;
}

/**
 * C2SP tlog-witness add-checkpoint: verify the log's signature, check the old size against the
 * latest cosigned checkpoint, check the consistency proof, persist, cosign. The checks run in the
 * order the spec lists them.
 */
export class Witness {
  constructor(private readonly options: WitnessOptions) {}

  get verifierKey(): string {
    return this.options.cosigner.verifierKey;
  }

  async addCheckpoint(body: string): Promise<AddCheckpointOutcome> {
    const outcome = await this.evaluate(body);
    this.options.onOutcome?.(outcome.status);
    return outcome;
  }

  private async evaluate(body: string): Promise<AddCheckpointOutcome> {
    let request: ReturnType<typeof parseAddCheckpointBody>;
    let checkpoint: Checkpoint;
    let text: string;
    try {
      request = parseAddCheckpointBody(body);
      text = parseSignedNote(request.checkpoint).text;
      checkpoint = parseCheckpoint(text);
    } catch (error) {
      if (error instanceof AddCheckpointFormatError || error instanceof NoteError) return refuse(400, 'bad_request', error.message);
      throw error;
    }
    // "If the checkpoint origin is unknown, the witness MUST respond with a 404 Not Found."
    const verifiers = this.options.logs.get(checkpoint.origin);
    if (verifiers === undefined) return refuse(404, 'unknown_log', `this witness does not follow a log with origin ${JSON.stringify(checkpoint.origin)}`);
    // "403 Forbidden … if either no signature from a trusted key for the origin is present, or a
    // signature line's key name and ID match a trusted key but the signature itself fails to verify."
    let verifiedLines: string[];
    try {
      verifiedLines = openNote(request.checkpoint, verifiers).verified.map((signature) => `${signature.line}\n`);
    } catch (error) {
      if (error instanceof NoteError) return refuse(403, 'untrusted_signature', `the checkpoint is not signed by a trusted key of ${checkpoint.origin}: ${error.message}`);
      throw error;
    }
    // "The old size MUST be equal to or lower than the checkpoint size. Otherwise … 400 Bad Request."
    if (request.oldSize > checkpoint.size) return refuse(400, 'bad_request', `old size ${request.oldSize} is larger than the checkpoint size ${checkpoint.size}`);

    return this.options.store.withLock(checkpoint.origin, async () => {
      const latest = await this.options.store.read(checkpoint.origin);
      const latestSize = latest?.size ?? 0;
      // "If it doesn't match, the witness MUST respond with a 409 Conflict" and the latest size.
      if (request.oldSize !== latestSize) return { status: 409, size: latestSize } as const;
      const inconsistency = this.inconsistency(request.oldSize, request.proof, latest?.rootHash, checkpoint);
      if (inconsistency !== undefined) {
        // "the witness MAY log the request … as it might be proof of log misbehavior."
        this.options.logger.warn(
          { origin: checkpoint.origin, oldSize: request.oldSize, size: checkpoint.size, reason: inconsistency, checkpoint: request.checkpoint },
          'witness refused an inconsistent checkpoint (possible log misbehaviour)',
        );
        return refuse(422, 'inconsistent', inconsistency);
      }
      const cosignature = formatSignatureLine(this.options.cosigner.name, this.options.cosigner.keyId, await this.options.cosigner.sign(Buffer.from(text, 'utf8')));
      await this.options.store.write({
        origin: checkpoint.origin,
        size: checkpoint.size,
        rootHash: checkpoint.rootHash,
        checkpoint: `${text}\n${verifiedLines.join('')}${cosignature}`,
        updatedAt: new Date(this.options.now?.() ?? Date.now()).toISOString(),
      });
      return { status: 200, cosignatures: cosignature } as const;
    });
  }

  private inconsistency(oldSize: number, proof: Buffer[], latestRoot: Buffer | undefined, checkpoint: Checkpoint): string | undefined {
    // "A checkpoint of size zero MUST have the root hash of the empty tree … Otherwise … 422."
    if (checkpoint.size === 0 && !checkpoint.rootHash.equals(EMPTY_ROOT)) return 'a checkpoint of size 0 must carry the root hash of the empty tree';
    // "If the old size is zero, the consistency proof MUST be empty."
    if (oldSize === 0) return proof.length === 0 ? undefined : 'the consistency proof must be empty when the old size is 0';
    // Equal sizes: "the witness MUST check that the root hashes are also identical"; otherwise RFC 6962 §2.1.2.
    try {
      assertConsistency(oldSize, checkpoint.size, latestRoot ?? EMPTY_ROOT, checkpoint.rootHash, proof);
      return undefined;
    } catch (error) {
      if (error instanceof MerkleProofError) return error.message;
      throw error;
    }
  }
}

function refuse(status: 400 | 403 | 404 | 422, code: string, message: string): AddCheckpointOutcome {
  return { status, code, message };
}
