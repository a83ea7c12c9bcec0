import { TokenvaultError } from '../../errors.js';

/**
 * A signed note, verifier key or checkpoint that does not parse or verify. The code says which
 * rule: a witness maps it onto its HTTP status, a verifier onto its verdict.
 */
export type NoteErrorCode =
  | 'note_malformed'
  | 'note_unverified'
  | 'note_invalid_signature'
  | 'note_ambiguous_key'
  | 'vkey_invalid'
  | 'vkey_unsupported'
  | 'checkpoint_malformed';

export class NoteError extends TokenvaultError {
  declare readonly code: NoteErrorCode;
  constructor(code: NoteErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { ...options, transient: false });
  }
}
