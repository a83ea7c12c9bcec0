import { z } from 'zod';
import { checkpointLine, type SignedCheckpoint } from './checkpoint.js';
import { canonicalJson } from './jcs.js';
import { NoteError } from './note/errors.js';
import { parseSignedNote } from './note/signed-note.js';
import { parseCheckpoint, type Checkpoint } from './note/tlog-checkpoint.js';

/**
 * What the checkpointer publishes and stores, one record per index (1, 2, 3… without gaps):
 *
 * - `json`: a tokenvault-audit-checkpoint/v1 (docs/audit-format.md §2), signed over the chain
 *   head. Written before the transparency log existed; still verified, no longer written.
 * - `note`: a C2SP tlog-checkpoint in a C2SP signed note (origin, tree size, Merkle root), signed
 *   by the log's keys and cosigned by witnesses. `index` and `time` travel beside the note,
 *   unsigned: they order the publication and let a reader notice a missing record, while the
 *   note's tree (consistency proofs) is what proves the log append-only.
 */
export type CheckpointRecord = JsonCheckpointRecord | NoteCheckpointRecord;

export interface JsonCheckpointRecord {
  kind: 'json';
  index: number;
  checkpoint: SignedCheckpoint;
}

export interface NoteCheckpointRecord {
  kind: 'note';
  index: number;
  /** When it was signed, ISO-8601 UTC (unsigned: the witnesses' cosignatures carry signed times). */
  time: string;
  /** The signed note, verbatim: the checkpoint text, a blank line, the log's signatures, then cosignatures. */
  note: string;
  /**
   * RFC 9162 consistency proof from the previous note checkpoint's tree size to this one's: with
   * the two signed roots it proves this tree extends the previous one, so anyone can check the
   * published sequence is append-only without the rows (absent on the first note checkpoint).
   */
  consistency?: ConsistencyLink | undefined;
}

export interface ConsistencyLink {
  fromSize: number;
  proof: Buffer[];
}

export const NOTE_CHECKPOINT_TYPE = 'note_checkpoint';

const base64Hash = z.string().regex(/^[A-Za-z0-9+/]{43}=$/);
const noteLineSchema = z
  .object({
    type: z.literal(NOTE_CHECKPOINT_TYPE),
    index: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    time: z.string().min(1).max(64),
    note: z.string().min(1).max(256 * 1024),
    consistency: z
      .object({ from_size: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER), proof: z.array(base64Hash).max(128) })
      .strict()
      .optional(),
  })
  .strict();

/**
 * `{"consistency":{"from_size":…,"proof":["base64",…]},"index":…,"note":"…","time":"…","type":"note_checkpoint"}`
 * (JCS, one line): a line of a checkpoints file, an S3 object, the export.
 */
export function noteCheckpointLine(record: Omit<NoteCheckpointRecord, 'kind'>): string {
  return canonicalJson({
    type: NOTE_CHECKPOINT_TYPE,
    index: record.index,
    time: record.time,
    note: record.note,
    ...(record.consistency === undefined
      ? {}
      : { consistency: { from_size: record.consistency.fromSize, proof: record.consistency.proof.map((hash) => hash.toString('base64')) } }),
  });
}

/** Parses a note_checkpoint line (already JSON-decoded); throws a zod error naming the bad field. The note itself is not parsed here. */
export function parseNoteCheckpointLine(value: unknown): NoteCheckpointRecord {
  const line = noteLineSchema.parse(value);
  return {
    kind: 'note',
    index: line.index,
    time: line.time,
    note: line.note,
    ...(line.consistency === undefined
      ? {}
      : { consistency: { fromSize: line.consistency.from_size, proof: line.consistency.proof.map((hash) => Buffer.from(hash, 'base64')) } }),
  };
}

export function recordLine(record: CheckpointRecord): string {
  return record.kind === 'json' ? checkpointLine(record.checkpoint) : noteCheckpointLine(record);
}

export function jsonRecord(checkpoint: SignedCheckpoint): JsonCheckpointRecord {
  return { kind: 'json', index: checkpoint.body.index, checkpoint };
}

/** The checkpoint text of a note record (origin, size, root), unverified; throws NoteError when it does not parse. */
export function noteCheckpointOf(record: NoteCheckpointRecord): Checkpoint {
  return parseCheckpoint(parseSignedNote(record.note).text);
}

/** The log a record belongs to (its origin), or undefined when its note does not parse. */
export function recordOrigin(record: CheckpointRecord): string | undefined {
  if (record.kind === 'json') return record.checkpoint.body.origin;
  try {
    return noteCheckpointOf(record).origin;
  } catch (error) {
    if (error instanceof NoteError) return undefined;
    throw error;
  }
}

/** Rows 1..N a record covers: the v1 head seq, or the note's tree size. */
export function recordSize(record: CheckpointRecord): number | undefined {
  if (record.kind === 'json') return record.checkpoint.body.seq;
  try {
    return noteCheckpointOf(record).size;
  } catch (error) {
    if (error instanceof NoteError) return undefined;
    throw error;
  }
}
