import type { FastifySchemaCompiler } from 'fastify';
import type { z } from 'zod';
import { humanError, issueLine } from '../../../lib/validation/human-errors.js';

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

/** fastify-type-provider-zod's compiler, with the human error map. */
export const validatorCompiler: FastifySchemaCompiler<z.ZodType> =
  ({ schema }) =>
  (data) => {
    const result = schema.safeParse(data, { error: humanError });
    return result.success ? { value: result.data } : { error: new RequestValidationError(result.error.issues) };
  };
