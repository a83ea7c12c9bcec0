import { NoteError } from './errors.js';
import { parseSignedNote, type NoteSignature } from './signed-note.js';
import type { NoteVerifier } from './vkey.js';

export interface VerifiedSignature extends NoteSignature {
  verifier: NoteVerifier;
  /** Set for timestamped cosignatures (type 0x04). */
  timestamp?: number;
}

export interface OpenedNote {
  text: string;
  /** Signatures of known keys, all verified (one per key). */
  verified: VerifiedSignature[];
  /** Signatures of keys not in the list, kept (deduplicated) so they can be passed on. */
  unknown: NoteSignature[];
}

/**
 * Parses and verifies a signed note as C2SP signed-note requires: "Verifiers MUST ignore
 * signatures from unknown keys, even if they share a name or ID (but not both) with a known key.
 * If the key name and ID match a known key, verifiers MUST verify the signature. If a signature
 * from a known key fails to verify, clients SHOULD reject the whole note. If no signature from a
 * known key verifies successfully, clients MUST reject the note." Throws NoteError:
 * note_malformed, note_invalid_signature, note_unverified or note_ambiguous_key.
 */
export function openNote(input: string | Uint8Array, known: readonly NoteVerifier[]): OpenedNote {
  const note = parseSignedNote(input);
  const text = Buffer.from(note.text, 'utf8');
  const byKey = new Map<string, NoteVerifier[]>();
  for (const verifier of known) {
    const key = keyOf(verifier.name, verifier.keyId);
    byKey.set(key, [...(byKey.get(key) ?? []), verifier]);
  }
  const verified: VerifiedSignature[] = [];
  const unknown: NoteSignature[] = [];
  const seenKeys = new Set<string>();
  const seenLines = new Set<string>();
  for (const signature of note.signatures) {
    const key = keyOf(signature.name, signature.keyId);
    const candidates = byKey.get(key);
    if (candidates === undefined) {
      if (!seenLines.has(signature.line)) unknown.push(signature);
      seenLines.add(signature.line);
      continue;
    }
    if (candidates.length > 1) throw new NoteError('note_ambiguous_key', `more than one trusted key is named ${describe(signature)}`);
    // A key signs once; a repeated signature of the same key is dropped like Go's note.Open does.
    if (seenKeys.has(key)) continue;
    seenKeys.add(key);
    const verifier = candidates[0]!;
    if (!verifier.verify(text, signature.signature)) {
      throw new NoteError('note_invalid_signature', `the signature of trusted key ${describe(signature)} does not verify`);
    }
    const timestamp = verifier.timestampOf?.(signature.signature);
    verified.push({ ...signature, verifier, ...(timestamp === undefined ? {} : { timestamp }) });
  }
  if (verified.length === 0) throw new NoteError('note_unverified', 'the note carries no signature from a trusted key');
  return { text: note.text, verified, unknown };
}

function keyOf(name: string, keyId: number): string {
  return `${name}+${keyId}`;
}

function describe(signature: NoteSignature): string {
  return `${signature.name}+${signature.keyId.toString(16).padStart(8, '0')}`;
}
