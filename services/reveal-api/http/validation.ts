import type { FastifySchemaCompiler } from 'fastify';
import type { z } from 'zod';
import { humanError, issueLine } from '../../../lib/validation/human-errors.js';
import { unstorable } from '../../../lib/validation/storable-text.js';

const WHOLE: Record<string, string> = { body: 'the request body', querystring: 'the query string', params: 'the path', headers: 'the headers' };

/** A request refused by its schema; the error handler answers 400 invalid_request with `message`. */
export class RequestValidationError extends Error {
  readonly statusCode = 400;
  /** Set by Fastify: body, querystring, params or headers. */
  validationContext: string | undefined;

  constructor(readonly issues: readonly z.core.$ZodIssue[]) {
    super('request validation failed');
    this.name = 'RequestValidationError';
  }

  /** At most five issue lines, e.g. `purpose is required (at least 10 characters); tokens: at most 100 per request`. */
  describe(): string {
    const whole = WHOLE[this.validationContext ?? ''] ?? 'the request';
    return this.issues
      .slice(0, 5)
      .map((issue) => issueLine(issue.path, issue.message, whole))
      .join('; ');
  }
}

/**
 * fastify-type-provider-zod's compiler, with the human error map, after the one rule every
 * string input follows whatever its schema says: body fields, array items, query parameters
 * and path parameters PostgreSQL cannot store as given (NUL, unpaired surrogates) are a
 * caller's mistake, a 400 naming the field, never a 500 from the database.
 */
export const validatorCompiler: FastifySchemaCompiler<z.ZodType> =
  ({ schema }) =>
  (data) => {
    const unstorableInputs = unstorableIn(data, []);
    if (unstorableInputs.length > 0) return { error: new RequestValidationError(unstorableInputs) };
    const result = schema.safeParse(data, { error: humanError });
    return result.success ? { value: result.data } : { error: new RequestValidationError(result.error.issues) };
  };

const MAX_DEPTH = 16;

/** Every string in `value` that cannot be stored, as an issue at its path (the string itself is never quoted). */
function unstorableIn(value: unknown, path: PropertyKey[]): z.core.$ZodIssue[] {
  if (typeof value === 'string') {
    const problem = unstorable(value);
    return problem === undefined ? [] : [{ code: 'custom', path, message: `${problem}, which cannot be stored: remove it`, input: undefined }];
  }
  if (value === null || typeof value !== 'object' || path.length >= MAX_DEPTH) return [];
  const entries: [PropertyKey, unknown][] = Array.isArray(value) ? value.map((item, index) => [index, item]) : Object.entries(value);
  return entries.flatMap(([key, item]) => unstorableIn(item, [...path, key]));
}
