/**
 * What a database error means for the caller, in one place: is it worth retrying later
 * (connection lost, server shutting down, serialization failure) or is it about this data;
 * which SQLSTATE it carries; and what of it may be logged (never a PostgreSQL message, which
 * may quote a value). Independent of the rest of the project: any error carrying a boolean
 * `transient` (our TokenvaultError) is taken at its word.
 */

/** SQLSTATE classes that mean "try again later": connection (08), resources (53), operator intervention (57), system (58), rollback (40). */
const TRANSIENT_SQLSTATE_CLASSES = new Set(['08', '53', '57', '58', '40']);
const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);
const TRANSIENT_PG_MESSAGES =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable/i;
const SQLSTATE = /^[0-9A-Z]{5}$/;

/** The SQLSTATE of a PostgreSQL error, if it is one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && SQLSTATE.test(code) ? code : undefined;
}

/**
 * True when the operation may succeed if retried later (nothing is wrong with the data): the
 * caller retries (the ingestor leaves the batch on the queue, the reveal-api answers 503)
 * instead of quarantining or answering 4xx/500.
 */
export function isTransient(error: unknown): boolean {
  const candidate = error as { code?: unknown; message?: unknown; cause?: unknown; transient?: unknown } | null;
  if (candidate === null || typeof candidate !== 'object') return false;
  if (typeof candidate.transient === 'boolean') return candidate.transient;
  const code = typeof candidate.code === 'string' ? candidate.code : undefined;
  if (code !== undefined) {
    if (TRANSIENT_NODE_CODES.has(code)) return true;
    if (SQLSTATE.test(code)) return TRANSIENT_SQLSTATE_CLASSES.has(code.slice(0, 2));
  }
  const message = typeof candidate.message === 'string' ? candidate.message : '';
  if (TRANSIENT_PG_MESSAGES.test(message)) return true;
  return candidate.cause !== undefined && candidate.cause !== error ? isTransient(candidate.cause) : false;
}

/** The connection to the server was lost while a client was checked out (failover, restart, network). */
export class ConnectionLostError extends Error {
  readonly code = 'connection_lost';
  readonly transient = true;
  constructor(cause: unknown) {
    super(`the database connection was lost: ${describeError(cause)}`, { cause });
    this.name = 'ConnectionLostError';
  }
}

export interface ErrorSummary {
  name: string;
  code: string;
  message: string;
}

/**
 * What a log line or an error message may say about an error: name, code and message. A raw
 * PostgreSQL error keeps only its SQLSTATE, since its message or detail may quote a value.
 */
export function errorSummary(error: unknown): ErrorSummary {
  if (error instanceof Error) {
    const state = sqlState(error);
    if (state !== undefined) return { name: error.name, code: state, message: `SQLSTATE ${state}` };
    const code = (error as { code?: unknown }).code;
    return { name: error.name, code: typeof code === 'string' ? code : 'error', message: error.message };
  }
  return { name: 'unknown', code: 'error', message: String(error) };
}

/** errorSummary as one line of text. */
export function describeError(error: unknown): string {
  const state = sqlState(error);
  if (state !== undefined) return `PostgreSQL error SQLSTATE ${state}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
