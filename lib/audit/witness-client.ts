import { TokenvaultError } from '../errors.js';
import { NoteError } from './note/errors.js';
import { openNote } from './note/open-note.js';
import { parseSignedNote } from './note/signed-note.js';
import { parseCheckpoint } from './note/tlog-checkpoint.js';
import type { NoteVerifier } from './note/vkey.js';
import { ADD_CHECKPOINT_PATH, formatAddCheckpointBody, parseSizeBody, SIZE_CONTENT_TYPE } from './witness-protocol.js';

/** A witness as a log knows it: where to submit, and the cosignature key (vkey type 0x04) it trusts. */
export interface WitnessEndpoint {
  /** The submission prefix, e.g. http://127.0.0.1:3090 (add-checkpoint is appended). */
  url: string;
  verifier: NoteVerifier;
}

export interface Cosignature {
  witness: string;
  /** The signature line, newline included: append it to the checkpoint note. */
  line: string;
  /** POSIX seconds the witness put in its cosignature. */
  timestamp: number;
  /** The old size the witness accepted (its previous latest size for this log). */
  oldSize: number;
}

export type WitnessErrorCode =
  | 'witness_unavailable'
  | 'witness_bad_request'
  | 'witness_untrusted_signature'
  | 'witness_unknown_log'
  | 'witness_inconsistent'
  | 'witness_ahead'
  | 'witness_conflict'
  | 'witness_bad_response';

/**
 * A witness did not cosign. witness_inconsistent (422) and witness_ahead (the witness has seen a
 * larger tree of this log) are alarms: the log is not append-only from the witness's view.
 * witness_unavailable is transient (network, 5xx, 429); everything else is permanent.
 */
export class WitnessError extends TokenvaultError {
  declare readonly code: WitnessErrorCode;
  /** The witness's HTTP status, when it answered. */
  readonly status: number | undefined;

  constructor(code: WitnessErrorCode, message: string, options: { cause?: unknown; transient?: boolean; status?: number } = {}) {
    super(code, message, options);
    this.status = options.status;
  }
}

export interface SubmitOptions {
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  /** 409 retries with the witness's size before giving up (default 2). */
  maxConflictRetries?: number;
  fetch?: typeof fetch;
}

/**
 * Submits a signed checkpoint to a witness (C2SP tlog-witness add-checkpoint) and returns its
 * verified cosignature. `oldSize` is the size the log believes the witness has (0 when it does not
 * know); on 409 the request is repeated from the size the witness reports, with a proof from
 * `consistencyProof(oldSize)` (the log's proof from that size to the checkpoint's size).
 */
export async function submitCheckpoint(
  witness: WitnessEndpoint,
  checkpointNote: string,
  oldSize: number,
  consistencyProof: (fromSize: number) => Promise<Buffer[]>,
  options: SubmitOptions = {},
): Promise<Cosignature> {
  const text = parseSignedNote(checkpointNote).text;
  const checkpoint = parseCheckpoint(text);
  const send = options.fetch ?? fetch;
  const url = `${witness.url.replace(/\/+$/, '')}${ADD_CHECKPOINT_PATH}`;
  let from = oldSize;
  for (let attempt = 0; ; attempt += 1) {
    if (from > checkpoint.size) {
      throw new WitnessError('witness_ahead', `witness ${witness.verifier.name} has cosigned size ${from} of ${checkpoint.origin}, larger than this checkpoint's ${checkpoint.size}: the log was rolled back or forked`);
    }
    const proof = from === 0 || from === checkpoint.size ? [] : await consistencyProof(from);
    let response: Response;
    let body: string;
    try {
      response = await send(url, {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body: formatAddCheckpointBody({ oldSize: from, proof, checkpoint: checkpointNote }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      });
      body = await response.text();
    } catch (cause) {
      throw new WitnessError('witness_unavailable', `witness ${witness.verifier.name} at ${url} did not answer: ${(cause as Error).message}`, { cause, transient: true });
    }
    if (response.status === 200) return verifyCosignature(witness, text, body, from);
    if (response.status === 409) {
      const size = response.headers.get('content-type')?.startsWith(SIZE_CONTENT_TYPE) === true ? parseSizeBody(body) : undefined;
      if (size === undefined) throw new WitnessError('witness_bad_response', `witness ${witness.verifier.name} answered 409 without a ${SIZE_CONTENT_TYPE} size`, { status: 409 });
      if (attempt >= (options.maxConflictRetries ?? 2) || size === from) {
        throw new WitnessError('witness_conflict', `witness ${witness.verifier.name} keeps reporting size ${size} for ${checkpoint.origin}`, { status: 409, transient: true });
      }
      from = size;
      continue;
    }
    throw refusal(witness, response.status, body);
  }
}

function verifyCosignature(witness: WitnessEndpoint, text: string, body: string, oldSize: number): Cosignature {
  try {
    // "the client MAY concatenate it to the checkpoint, and use a note verification function configured with the witness keys it trusts."
    const opened = openNote(`${text}\n${body}`, [witness.verifier]);
    const signature = opened.verified[0]!;
    if (signature.timestamp === undefined || signature.timestamp === 0) throw new NoteError('note_unverified', 'the cosignature has no timestamp');
    return { witness: witness.verifier.name, line: `${signature.line}\n`, timestamp: signature.timestamp, oldSize };
  } catch (cause) {
    throw new WitnessError('witness_bad_response', `witness ${witness.verifier.name} answered 200 without a valid cosignature of its key: ${(cause as Error).message}`, { cause });
  }
}

function refusal(witness: WitnessEndpoint, status: number, body: string): WitnessError {
  let detail = body.slice(0, 300);
  try {
    detail = (JSON.parse(body) as { error?: { message?: string } }).error?.message ?? detail;
  } catch {
    // not JSON: keep the text
  }
  const name = witness.verifier.name;
  if (status === 422) return new WitnessError('witness_inconsistent', `witness ${name} refused the checkpoint as inconsistent with what it cosigned before: ${detail}`, { status });
  if (status === 403) return new WitnessError('witness_untrusted_signature', `witness ${name} does not trust the checkpoint's signature: ${detail}`, { status });
  if (status === 404) return new WitnessError('witness_unknown_log', `witness ${name} does not follow this log: ${detail}`, { status });
  if (status === 400) return new WitnessError('witness_bad_request', `witness ${name} refused the request: ${detail}`, { status });
  return new WitnessError('witness_unavailable', `witness ${name} answered ${status}: ${detail}`, { status, transient: true });
}
