import { checkNoteText, formatSignatureLine, formatSignedNote } from './signed-note.js';

/**
 * Something that signs note texts with one key: a local Ed25519 key, AWS KMS (ECDSA P-256 or
 * Ed25519), a witness's cosigning key. Implementations live in lib/keys/note-signers.ts and
 * lib/keys/kms-ed25519-note-signer.ts.
 */
export interface NoteSigner {
  /** Key name in the signature line (for a log: its origin). */
  readonly name: string;
  readonly keyId: number;
  /** The vkey that verifies these signatures (publish it). */
  readonly verifierKey: string;
  /** The signature bytes of the note text (without the key ID, which signNote adds). */
  sign(text: Buffer): Promise<Buffer>;
}

/** One signature line per signer over `text`. */
export async function signatureLines(text: string, signers: readonly NoteSigner[]): Promise<string[]> {
  checkNoteText(text);
  const bytes = Buffer.from(text, 'utf8');
  return Promise.all(signers.map(async (signer) => formatSignatureLine(signer.name, signer.keyId, await signer.sign(bytes))));
}

/** The signed note: `text`, a blank line, one signature line per signer, in the signers' order. */
export async function signNote(text: string, signers: readonly NoteSigner[]): Promise<string> {
  return formatSignedNote(text, await signatureLines(text, signers));
}
