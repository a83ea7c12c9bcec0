import { NoteError } from './errors.js';

/**
 * C2SP signed-note v1.0.0 (c2sp.org/signed-note): "A signed note consists of a text ending in
 * newline (U+000A), followed by a blank line (only a newline), followed by one or more signature
 * lines of this form: em dash (U+2014), space (U+0020), key name, space, base64-encoded
 * signature, newline." Signatures are base64(32-bit big-endian key ID || signature bytes).
 */

/** "Verifiers SHOULD apply a maximum limit to the number of signatures … but MUST accept at least up to 16." Go's sumdb/note stops at 100. */
export const MAX_SIGNATURES = 100;
/** Room for 16 post-quantum signatures ("up to nearly 5kB") plus a text; notes are small. */
export const MAX_NOTE_BYTES = 256 * 1024;

const SIGNATURE_PREFIX = '\u2014 ';
const WHITE_SPACE = /\p{White_Space}/u;
const LONE_SURROGATE = /\p{Surrogate}/u;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface NoteSignature {
  /** Key name. */
  name: string;
  /** uint32 key ID (the first four bytes of the base64 field, big-endian). */
  keyId: number;
  /** The signature bytes after the key ID. */
  signature: Buffer;
  /** The line as it appears in the note, without the newline. */
  line: string;
}

export interface SignedNote {
  /** The signed text, including its final newline, excluding the separating blank line. */
  text: string;
  signatures: NoteSignature[];
}

/** "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus (U+002B) characters." */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !WHITE_SPACE.test(name) && !name.includes('+');
}

/** Standard base64 (RFC 4648 §4) in its one canonical form; anything else is undefined. */
export function decodeBase64Strict(value: string): Buffer | undefined {
  if (value.length % 4 !== 0 || !BASE64.test(value)) return undefined;
  const bytes = Buffer.from(value, 'base64');
  return bytes.toString('base64') === value ? bytes : undefined;
}

/**
 * "Signed notes MUST be valid UTF-8 and MUST NOT contain any ASCII control characters (those below
 * U+0020) other than newline." Returns the decoded text or throws note_malformed.
 */
export function checkNoteCharacters(input: string | Uint8Array): string {
  // A string's length in UTF-16 units is at most its UTF-8 length: cheap early refusal of huge input.
  if (input.length > MAX_NOTE_BYTES) throw new NoteError('note_malformed', `the note is larger than ${MAX_NOTE_BYTES} bytes`);
  let text: string;
  if (typeof input === 'string') {
    text = input;
    if (LONE_SURROGATE.test(text)) throw new NoteError('note_malformed', 'the note is not valid UTF-8 (lone surrogate)');
  } else {
    try {
      text = utf8.decode(input);
    } catch (cause) {
      throw new NoteError('note_malformed', 'the note is not valid UTF-8', { cause });
    }
  }
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 0x20 && code !== 0x0a) throw new NoteError('note_malformed', `the note contains control character U+${code.toString(16).padStart(4, '0')}`);
  }
  if (Buffer.byteLength(text, 'utf8') > MAX_NOTE_BYTES) throw new NoteError('note_malformed', `the note is larger than ${MAX_NOTE_BYTES} bytes`);
  return text;
}

/** Splits a signed note into its text and signature lines, strictly; verifies nothing. */
export function parseSignedNote(input: string | Uint8Array): SignedNote {
  const note = checkNoteCharacters(input);
  // "the text is separated from the signatures by the last empty line in the note."
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('note_malformed', 'the note has no blank line before its signatures');
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block.length === 0) throw new NoteError('note_malformed', 'the note has no signature lines');
  if (!block.endsWith('\n')) throw new NoteError('note_malformed', 'the last signature line does not end in a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw new NoteError('note_malformed', `the note has more than ${MAX_SIGNATURES} signatures`);
  return { text, signatures: lines.map(parseSignatureLine) };
}

function parseSignatureLine(line: string, position: number): NoteSignature {
  if (!line.startsWith(SIGNATURE_PREFIX)) throw new NoteError('note_malformed', `signature line ${position + 1} does not start with "— "`);
  const rest = line.slice(SIGNATURE_PREFIX.length);
  const space = rest.indexOf(' ');
  const name = space < 0 ? rest : rest.slice(0, space);
  const encoded = space < 0 ? '' : rest.slice(space + 1);
  if (!isValidKeyName(name)) throw new NoteError('note_malformed', `signature line ${position + 1} has an invalid key name`);
  const bytes = decodeBase64Strict(encoded);
  if (encoded === '' || bytes === undefined) throw new NoteError('note_malformed', `signature line ${position + 1} is not standard base64`);
  if (bytes.length < 5) throw new NoteError('note_malformed', `signature line ${position + 1} is too short for a key ID and a signature`);
  return { name, keyId: bytes.readUInt32BE(0), signature: bytes.subarray(4), line };
}

/** `— <key name> base64(32-bit key ID || signature)` plus the newline. */
export function formatSignatureLine(name: string, keyId: number, signature: Uint8Array): string {
  if (!isValidKeyName(name)) throw new NoteError('note_malformed', `invalid key name ${JSON.stringify(name)}`);
  const id = Buffer.alloc(4);
  id.writeUInt32BE(keyId >>> 0);
  return `${SIGNATURE_PREFIX}${name} ${Buffer.concat([id, signature]).toString('base64')}\n`;
}

/** The text, the blank line, the signature lines (each already ending in a newline). */
export function formatSignedNote(text: string, signatureLines: readonly string[]): string {
  checkNoteText(text);
  if (signatureLines.length === 0) throw new NoteError('note_malformed', 'a signed note needs at least one signature');
  return `${text}\n${signatureLines.join('')}`;
}

/** A note text as signers require it: valid characters, ending in a newline. */
export function checkNoteText(text: string): void {
  checkNoteCharacters(text);
  if (!text.endsWith('\n')) throw new NoteError('note_malformed', 'a note text must end in a newline');
}
