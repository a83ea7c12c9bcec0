import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PiiField } from '../../../lib/crypto/normalize.js';
import { parseToken } from '../../../lib/crypto/tokens.js';
import { outcomeOf } from '../http/auditor.js';
import { ForbiddenError } from '../http/errors.js';
import { maskValue } from '../policy/mask.js';
import { principalOf, type RouteContext } from './context.js';
import { bearerSecurity, errorResponses, fieldSchema, MAX_TOKENS_PER_REQUEST, purposeSchema, ticketSchema, tokenSchema } from './schemas.js';

const revealBody = z.object({
  tokens: z.array(tokenSchema).min(1).max(MAX_TOKENS_PER_REQUEST),
  purpose: purposeSchema,
  ticket: ticketSchema.optional(),
});

const revealResult = z.union([
  z.object({ token: z.string(), field: fieldSchema, value: z.string(), redaction: z.enum(['none', 'masked']) }),
  z.object({ token: z.string(), error: z.enum(['not_found', 'forbidden', 'invalid_token', 'undecryptable']) }),
]);

type RevealResult = z.infer<typeof revealResult>;

export function revealRoutes(context: RouteContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.withTypeProvider<ZodTypeProvider>().post('/reveal', {
      config: { auditAction: 'reveal', rateLimit: {} },
      preValidation: context.authenticate,
      schema: {
        summary: 'Reveal the original values of tokens',
        description:
          'Each token is answered once (duplicates collapse). The attempt is written to the audit log, and committed, before any value is returned.',
        tags: ['reveal'],
        security: bearerSecurity,
        body: revealBody,
        response: { 200: z.object({ results: z.array(revealResult) }), ...errorResponses },
      },
      handler: async (request) => {
        const principal = principalOf(request);
        const grants = context.policy.permissionsFor(principal.roles).reveal;
        const { purpose, ticket = null } = request.body;
        const requested = [...new Set(request.body.tokens)].map((token) => ({ token, field: parseToken(token)?.field }));
        const wellFormed = requested.flatMap((item) => (item.field === undefined ? [] : [item.token]));

        if (Object.keys(grants).length === 0) {
          await context.auditor.record(request, { outcome: 'denied', reason: 'no reveal permission', tokens: wellFormed, purpose, ticket });
          throw new ForbiddenError('your roles do not allow revealing values');
        }

        const permitted = requested.filter((item) => item.field !== undefined && grants[item.field] !== undefined).map((item) => item.token);
        const found = await context.vault.lookup(permitted);

        const counts = { revealed: 0, not_found: 0, forbidden: 0, invalid_token: 0, undecryptable: 0 };
        const fieldCounts: Partial<Record<PiiField, number>> = {};
        const results = requested.map((item): RevealResult => {
          if (item.field === undefined) return tally(counts, { token: item.token, error: 'invalid_token' });
          const redaction = grants[item.field];
          if (redaction === undefined) return tally(counts, { token: item.token, error: 'forbidden' });
          const entry = found.get(item.token);
          if (entry === undefined) return tally(counts, { token: item.token, error: 'not_found' });
          if ('error' in entry) return tally(counts, { token: item.token, error: entry.error });
          fieldCounts[entry.field] = (fieldCounts[entry.field] ?? 0) + 1;
          counts.revealed += 1;
          return redaction === 'plain'
            ? { token: item.token, field: entry.field, value: entry.value, redaction: 'none' }
            : { token: item.token, field: entry.field, value: maskValue(entry.field, entry.value), redaction: 'masked' };
        });

        const outcome = outcomeOf({
          permitted: requested.length - counts.forbidden - counts.invalid_token,
          forbidden: counts.forbidden,
          invalid: counts.invalid_token,
        });
        // Fail closed: if this row cannot be committed, the values above never leave the process.
        await context.auditor.record(request, { outcome, reason: summary(counts), tokens: wellFormed, fieldCounts, purpose, ticket });
        for (const [field, count] of Object.entries(fieldCounts)) {
          context.metrics.revealedValues.inc({ field, redaction: grants[field as PiiField] === 'plain' ? 'none' : 'masked' }, count);
        }
        return { results };
      },
    });
  };
}

function tally(counts: Record<string, number>, result: { token: string; error: 'not_found' | 'forbidden' | 'invalid_token' | 'undecryptable' }): RevealResult {
  counts[result.error] = (counts[result.error] ?? 0) + 1;
  return result;
}

export function summary(counts: Record<string, number>): string {
  return Object.entries(counts)
    .filter(([, count]) => count > 0)
    .map(([name, count]) => `${name}=${count}`)
    .join(' ');
}
