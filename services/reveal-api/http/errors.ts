import { TokenvaultError } from '../../../lib/errors.js';

/** An error with an HTTP status and a stable, client-safe code and message. */
export class HttpError extends TokenvaultError {
  constructor(
    readonly statusCode: number,
    code: string,
    message: string,
    options: { cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(code, message, { cause: options.cause, transient: statusCode === 503 });
    this.headers = options.headers ?? {};
  }
  readonly headers: Record<string, string>;
}

export class ForbiddenError extends HttpError {
  constructor(message: string) {
    super(403, 'forbidden', message);
  }
}

export class RateLimitedError extends HttpError {
  constructor(retryAfter: string) {
    super(429, 'rate_limited', `too many requests, retry in ${retryAfter}`);
  }
}

/** The one error body shape clients can rely on. */
export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
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
