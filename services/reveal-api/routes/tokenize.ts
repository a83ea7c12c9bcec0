import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { countsReason, outcomeOf } from '../audit/auditor.js';
import type { RouteContext } from './context.js';
import { bearerSecurity, errorResponses, fieldSchema, MAX_TOKENS_PER_REQUEST } from './schemas.js';

const tokenizeBody = z.object({
  field: fieldSchema,
  values: z.array(z.string().max(512)).min(1).max(MAX_TOKENS_PER_REQUEST),
});

/** Validated before the permission check runs. */
const fieldOf = (request: FastifyRequest) => (request.body as z.infer<typeof tokenizeBody>).field;

const tokenizeResult = z.union([z.object({ index: z.number().int(), token: z.string() }), z.object({ index: z.number().int(), error: z.literal('invalid_value') })]);

/**
 * Value → token, for analysts who must find the rows of a known IP or device without seeing
 * anything else. Answers by index: values are never echoed, logged or audited.
 */
export function tokenizeRoutes(context: RouteContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.withTypeProvider<ZodTypeProvider>().post('/tokenize', {
      config: {
        auditAction: 'tokenize',
        rateLimit: {},
        permission: {
          allows: (permissions, request) => permissions.tokenize.has(fieldOf(request)),
          refuses: (request) => `tokenizing ${fieldOf(request)} values`,
          denial: (request) => ({ reason: `no tokenize permission for ${fieldOf(request)}`, tokens: [] }),
        },
      },
      schema: {
        summary: 'Find the token of known values',
        description: 'Results are matched to values by index; the values are not echoed. The resulting tokens are audited.',
        tags: ['tokenize'],
        security: bearerSecurity,
        body: tokenizeBody,
        response: { 200: z.object({ key_version: z.number().int(), results: z.array(tokenizeResult) }), ...errorResponses },
      },
      handler: async (request) => {
        const { field, values } = request.body;
        const tokenizer = await context.tokenizer.get();
        let invalid = 0;
        const results = values.map((value, index): z.infer<typeof tokenizeResult> => {
          const token = tokenizer.tokenize(field, value);
          if (token === undefined) {
            invalid += 1;
            return { index, error: 'invalid_value' };
          }
          return { index, token };
        });
        const tokens = [...new Set(results.flatMap((result) => ('token' in result ? [result.token] : [])))];
        await context.auditor.record(request, {
          outcome: outcomeOf({ permitted: values.length - invalid, forbidden: 0, invalid }),
          reason: countsReason({ tokenized: values.length - invalid, invalid_value: invalid }),
          tokens,
          fieldCounts: { [field]: values.length - invalid },
          purpose: null,
          ticket: null,
        });
        return { key_version: tokenizer.keyVersion, results };
      },
    });
  };
}
