import { HASH_SIZE } from './merkle/hash.js';
import { decodeBase64Strict } from './note/signed-note.js';

/**
 * The wire format of C2SP tlog-witness `add-checkpoint` (c2sp.org/tlog-witness): "The request body
 * MUST be a sequence of an old size line, zero or more consistency proof lines, and an empty line,
 * followed by a checkpoint. Each line MUST terminate in a newline character (U+000A)." Shared by
 * the witness (parse) and the client (format).
 */

/** "The client MUST NOT send more than 63 consistency proof lines." */
export const MAX_PROOF_LINES = 63;
/** The 409 response: "The response MUST have a Content-Type of text/x.tlog.size." */
export const SIZE_CONTENT_TYPE = 'text/x.tlog.size';
export const ADD_CHECKPOINT_PATH = '/add-checkpoint';

export interface AddCheckpointRequest {
  oldSize: number;
  proof: Buffer[];
  /** The signed checkpoint note, verbatim. */
  checkpoint: string;
}

export class AddCheckpointFormatError extends Error {
  override readonly name = 'AddCheckpointFormatError';
}

const DECIMAL = /^(0|[1-9][0-9]*)$/;

export function formatAddCheckpointBody(request: AddCheckpointRequest): string {
  if (!Number.isSafeInteger(request.oldSize) || request.oldSize < 0) throw new RangeError(`invalid old size ${request.oldSize}`);
  if (request.proof.length > MAX_PROOF_LINES) throw new RangeError(`a consistency proof has at most ${MAX_PROOF_LINES} hashes`);
  const lines = [`old ${request.oldSize}`, ...request.proof.map((hash) => hash.toString('base64'))];
  return `${lines.join('\n')}\n\n${request.checkpoint}`;
}

/** Parses the request strictly; the checkpoint note is returned unparsed (the caller opens it). */
export function parseAddCheckpointBody(body: string): AddCheckpointRequest {
  let position = 0;
  const nextLine = (): string => {
    const end = body.indexOf('\n', position);
    if (end < 0) throw new AddCheckpointFormatError('the request ends before the empty line that precedes the checkpoint');
    const line = body.slice(position, end);
    position = end + 1;
    return line;
  };
  const oldLine = nextLine();
  const match = /^old (.*)$/.exec(oldLine);
  if (match === null || !DECIMAL.test(match[1]!)) throw new AddCheckpointFormatError('the first line must be "old <size>" with a decimal size without leading zeroes');
  const oldSize = Number(match[1]);
  if (!Number.isSafeInteger(oldSize)) throw new AddCheckpointFormatError('the old size is larger than 2^53-1');
  const proof: Buffer[] = [];
  for (let line = nextLine(); line !== ''; line = nextLine()) {
    if (proof.length === MAX_PROOF_LINES) throw new AddCheckpointFormatError(`more than ${MAX_PROOF_LINES} consistency proof lines`);
    const hash = decodeBase64Strict(line);
    if (hash === undefined || hash.length !== HASH_SIZE) throw new AddCheckpointFormatError(`consistency proof line ${proof.length + 1} is not the base64 of a 32-byte hash`);
    proof.push(hash);
  }
  return { oldSize, proof, checkpoint: body.slice(position) };
}

/** The 409 body: "the tree size of the latest cosigned checkpoint in decimal, followed by a newline". */
export function parseSizeBody(body: string): number | undefined {
  const match = /^(0|[1-9][0-9]*)\n$/.exec(body);
  const size = match === null ? NaN : Number(match[1]);
  return Number.isSafeInteger(size) ? size : undefined;
}
