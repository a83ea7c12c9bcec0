import { TokenvaultError } from '../../../lib/errors.js';
import type { Attempt } from '../audit/auditor.js';

/** An error with an HTTP status and a stable, client-safe code and message. */
export class HttpError extends TokenvaultError {
  constructor(
    readonly statusCode: number,
    code: string,
    message: string,
    options: { cause?: unknown; headers?: Record<string, string>; auditReason?: string } = {},
  ) {
    super(code, message, { cause: options.cause, transient: statusCode === 503 });
    this.headers = options.headers ?? {};
    this.auditReason = options.auditReason ?? code;
  }
  readonly headers: Record<string, string>;
  /** The reason written to the audit row (defaults to the code). */
  readonly auditReason: string;
}

/** The audit row of a refusal by a route's permission rule: its reason and what differs from the route's defaults. */
export type Denial = Omit<Attempt, 'outcome'>;

export class ForbiddenError extends HttpError {
  constructor(
    message: string,
    /** Audited by the error handler (sampled like every refusal); undefined on unaudited routes. */
    readonly denial?: Denial,
  ) {
    super(403, 'forbidden', message, denial?.reason === undefined || denial.reason === null ? {} : { auditReason: denial.reason });
  }
}

export class RateLimitedError extends HttpError {
  constructor(retryAfter: string) {
    super(429, 'rate_limited', `too many requests, retry in ${retryAfter}`);
  }
}

export { errorBody, type ErrorBody } from '../../../lib/errors.js';

/**
 * PostgreSQL refused a value the caller chose (SQLSTATE class 22, data exception: a date out
 * of range, NUL in text...). Validation should have caught it; if it did not, it is still the
 * caller's mistake: a 400, never a 5xx that pages someone. Anything else is returned as is.
 * The message names the SQLSTATE only: PostgreSQL's own text may quote the value.
 */
export function callerValueRefused(error: unknown, what: string): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^22[0-9A-Z]{3}$/.test(code)) return error;
  return new HttpError(400, 'invalid_request', `the database refused ${what} (SQLSTATE ${code}); check the values sent`, { cause: error });
}

/** A reveal would exceed one of the caller's budgets: nothing was revealed. */
export class BudgetExhaustedError extends HttpError {
  constructor(message: string, headers: Record<string, string>) {
    super(429, 'budget_exhausted', message, { headers });
  }
}

export class NotFoundError extends HttpError {
  constructor(message: string) {
    super(404, 'not_found', message);
  }
}

/** The resource exists but is not in a state that allows this (already decided, collected, expired). */
export class ConflictError extends HttpError {
  constructor(code: string, message: string) {
    super(409, code, message);
  }
}
