import type { KeyObject } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { CHECKPOINT_FORMAT, verifyCheckpointSignature } from '../../../../lib/audit/checkpoint.js';
import type { CheckpointRecord } from '../../../../lib/audit/checkpoint-record.js';
import { NoteError } from '../../../../lib/audit/note/errors.js';
import { openCheckpoint } from '../../../../lib/audit/note/tlog-checkpoint.js';
import { SignatureType, type NoteVerifier } from '../../../../lib/audit/note/vkey.js';
import { fetchWitnessedCheckpoint, type WitnessEndpoint } from '../../../../lib/audit/witness-client.js';
import type { CheckpointSink } from './sinks.js';

/** Something signed earlier that the next checkpoint must extend, and where it was found. */
export type AnchorPoint =
  | { kind: 'note'; source: string; index: number | undefined; size: number; root: Buffer }
  | { kind: 'json'; source: string; index: number; size: number; headHash: string };

export interface AnchorReading {
  points: AnchorPoint[];
  /** Sources that could not be read this round (sinks down, witnesses unreachable). */
  unreadable: string[];
  /** A source holds something that is not a valid checkpoint of this log under its keys: the anchor cannot be trusted. */
  invalid: string[];
  /** What each witness has cosigned (its size), for the next submission. */
  witnessSizes: Map<string, number>;
}

export interface AnchorOptions {
  origin: string;
  /** The audit signing key (v1 checkpoints) … */
  publicKey: KeyObject;
  /** … and every key that signs the notes. */
  logKeys: readonly NoteVerifier[];
  sinks: readonly CheckpointSink[];
  witnesses: readonly WitnessEndpoint[];
  witnessTimeoutMs: number;
  logger: FastifyBaseLogger;
}

/**
 * Where the checkpointer's "last signed (size, root)" comes from: what it PUBLISHED, not the
 * database alone (issue 17 finding 2). Each round it reads back the newest record of every sink
 * that can be read (file, S3), the latest checkpoint every witness cosigned, and keeps in memory
 * the last one it signed itself; the database's newest record counts too, once its signature
 * verifies. Deleting audit_checkpoints therefore changes nothing: the next checkpoint still has to
 * extend (consistency proof) the newest of these, and its index follows the highest one seen.
 */
export class CheckpointAnchor {
  private memory: AnchorPoint | undefined;

  constructor(private readonly options: AnchorOptions) {}

  /** The last checkpoint this process signed (kept across rounds, lost on restart: the sinks and witnesses are read again). */
  remember(point: AnchorPoint): void {
    if (this.memory === undefined || (point.index ?? 0) >= (this.memory.index ?? 0)) this.memory = point;
  }

  get remembered(): AnchorPoint | undefined {
    return this.memory;
  }

  async read(stored: CheckpointRecord | undefined): Promise<AnchorReading> {
    const reading: AnchorReading = { points: [], unreadable: [], invalid: [], witnessSizes: new Map() };
    if (this.memory !== undefined) reading.points.push(this.memory);
    if (stored !== undefined) this.add(reading, 'the database', stored);
    const hint = Math.max(this.memory?.index ?? 0, stored?.index ?? 0);
    await Promise.all([
      ...this.options.sinks.map(async (sink) => {
        if (sink.latest === undefined) return;
        const source = `the ${sink.name} sink`;
        try {
          const record = await sink.latest(hint > 0 ? hint : undefined);
          if (record !== undefined) this.add(reading, source, record);
        } catch (error) {
          reading.unreadable.push(source);
          this.options.logger.warn({ err: error, sink: sink.name }, 'audit checkpoint sink could not be read back');
        }
      }),
      ...this.options.witnesses.map(async (witness) => {
        const source = `witness ${witness.verifier.name}`;
        try {
          const opened = await fetchWitnessedCheckpoint(witness, this.options.origin, this.options.logKeys, { timeoutMs: this.options.witnessTimeoutMs });
          reading.witnessSizes.set(witness.verifier.name, opened?.checkpoint.size ?? 0);
          if (opened !== undefined) reading.points.push({ kind: 'note', source, index: undefined, size: opened.checkpoint.size, root: opened.checkpoint.rootHash });
        } catch (error) {
          const code = (error as { code?: string }).code;
          if (code === 'witness_bad_response') reading.invalid.push(`${source}: ${(error as Error).message}`);
          else reading.unreadable.push(source);
          this.options.logger.warn({ err: error, witness: witness.verifier.name }, 'witness could not be asked what it cosigned');
        }
      }),
    ]);
    return reading;
  }

  /** A record read back must be a valid checkpoint of this log under its own keys. */
  private add(reading: AnchorReading, source: string, record: CheckpointRecord): void {
    if (record.kind === 'json') {
      const body = record.checkpoint.body;
      if (body.format !== CHECKPOINT_FORMAT || body.origin !== this.options.origin || !verifyCheckpointSignature(record.checkpoint, this.options.publicKey)) {
        reading.invalid.push(`${source}: checkpoint ${record.index} does not verify under this log's key (altered, forged or another log's)`);
        return;
      }
      reading.points.push({ kind: 'json', source, index: record.index, size: body.seq, headHash: body.head_hash });
      return;
    }
    try {
      const opened = openCheckpoint(record.note, this.options.logKeys);
      if (opened.checkpoint.origin !== this.options.origin) throw new NoteError('checkpoint_malformed', `it is a checkpoint of ${opened.checkpoint.origin}`);
      if (!opened.verified.some((signature) => signature.verifier.type !== SignatureType.CosignatureV1)) throw new NoteError('note_unverified', 'no log signature');
      reading.points.push({ kind: 'note', source, index: record.index, size: opened.checkpoint.size, root: opened.checkpoint.rootHash });
    } catch (error) {
      if (!(error instanceof NoteError)) throw error;
      reading.invalid.push(`${source}: checkpoint ${record.index} does not verify under this log's keys (${error.message})`);
    }
  }
}

/** The point to chain the next record's index and consistency link to: the highest index seen. */
export function newestIndexed(points: readonly AnchorPoint[]): AnchorPoint | undefined {
  let newest: AnchorPoint | undefined;
  for (const point of points) if (point.index !== undefined && (newest?.index === undefined || point.index > newest.index)) newest = point;
  return newest;
}
