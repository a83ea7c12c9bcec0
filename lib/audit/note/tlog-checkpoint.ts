import { EMPTY_ROOT, HASH_SIZE } from '../merkle/hash.js';
import { NoteError } from './errors.js';
import { openNote, type OpenedNote } from './open-note.js';
import { checkNoteText, decodeBase64Strict, isValidKeyName } from './signed-note.js';
import type { NoteVerifier } from './vkey.js';

/**
 * The note text of a C2SP tlog-checkpoint v1.0.0: "a sequence of at least three non-empty lines":
 * the origin, the tree size ("ASCII decimal … with no leading zeroes"), the root hash ("the
 * base64 encoding of the root of the RFC 6962 Merkle hash tree"), then optional non-empty
 * extension lines.
 */
export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Buffer;
  extensions: string[];
}

const DECIMAL = /^(0|[1-9][0-9]*)$/;

export function formatCheckpoint(checkpoint: Checkpoint): string {
  // Our own origins double as the log's key name ("The log's key name in its signature line SHOULD match the origin line").
  if (!isValidKeyName(checkpoint.origin)) throw new NoteError('checkpoint_malformed', 'the origin must be non-empty without spaces or "+"');
  if (!Number.isSafeInteger(checkpoint.size) || checkpoint.size < 0) throw new NoteError('checkpoint_malformed', `invalid tree size ${checkpoint.size}`);
  if (checkpoint.rootHash.length !== HASH_SIZE) throw new NoteError('checkpoint_malformed', 'the root hash must be 32 bytes');
  if (checkpoint.size === 0 && !checkpoint.rootHash.equals(EMPTY_ROOT)) throw new NoteError('checkpoint_malformed', 'the empty tree has the empty root hash');
  for (const line of checkpoint.extensions) {
    if (line.length === 0 || line.includes('\n')) throw new NoteError('checkpoint_malformed', 'extension lines must be non-empty single lines');
  }
  const text = [checkpoint.origin, String(checkpoint.size), checkpoint.rootHash.toString('base64'), ...checkpoint.extensions].join('\n') + '\n';
  checkNoteText(text);
  return text;
}

/**
 * Parses a checkpoint text strictly. Sizes above 2^53 − 1 are refused (this project counts in
 * JavaScript numbers; no audit log gets near).
 */
export function parseCheckpoint(text: string): Checkpoint {
  try {
    checkNoteText(text);
  } catch (cause) {
    throw new NoteError('checkpoint_malformed', `the checkpoint is not a valid note text: ${(cause as Error).message}`, { cause });
  }
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new NoteError('checkpoint_malformed', 'a checkpoint has at least three lines: origin, size, root hash');
  if (lines.some((line) => line.length === 0)) throw new NoteError('checkpoint_malformed', 'checkpoint lines must be non-empty');
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  if (!DECIMAL.test(sizeLine)) throw new NoteError('checkpoint_malformed', 'the tree size is not a decimal without leading zeroes');
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw new NoteError('checkpoint_malformed', 'the tree size is larger than 2^53-1');
  const rootHash = decodeBase64Strict(rootLine);
  if (rootHash === undefined || rootHash.length !== HASH_SIZE) throw new NoteError('checkpoint_malformed', 'the root hash is not the base64 of 32 bytes');
  return { origin, size, rootHash, extensions };
}

export interface OpenedCheckpoint extends OpenedNote {
  checkpoint: Checkpoint;
}

/** Verifies a signed checkpoint note against trusted keys, then parses its text. */
export function openCheckpoint(input: string | Uint8Array, known: readonly NoteVerifier[]): OpenedCheckpoint {
  const opened = openNote(input, known);
  return { ...opened, checkpoint: parseCheckpoint(opened.text) };
}
