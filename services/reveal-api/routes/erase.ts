import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PiiField } from '../../../lib/crypto/normalize.js';
import { parseToken } from '../../../lib/crypto/tokens.js';
import { auditSeqOf, countsReason, outcomeOf } from '../audit/auditor.js';
import { principalOf, type RouteContext } from './context.js';
import { auditSeqSchema, bearerSecurity, errorResponses, fieldSchema, MAX_TOKENS_PER_REQUEST, notATokenFor, notATokenResult, purposeSchema, ticketSchema, tokenSchema } from './schemas.js';
import { deleteVaultRows } from '../vault/vault.js';

const eraseBody = z.object({
  tokens: z.array(tokenSchema).min(1).max(MAX_TOKENS_PER_REQUEST),
  purpose: purposeSchema,
  ticket: ticketSchema.optional(),
});

const eraseResult = z.union([
  z.object({ token: z.string(), status: z.literal('erased') }),
  z.object({ token: z.string(), error: z.enum(['not_found', 'forbidden']) }),
  notATokenResult,
]);
type EraseResult = z.infer<typeof eraseResult>;

const previewResult = z.union([
  z.object({ token: z.string(), field: fieldSchema, status: z.literal('erasable') }),
  z.object({ token: z.string(), field: fieldSchema, error: z.enum(['not_found', 'forbidden']).describe('not_found: nothing stored (never ingested, or already erased)') }),
  notATokenResult,
]);

/**
 * Right to erasure by crypto-shredding: the vault row (the only copy of the original,
 * encrypted) is deleted, so the token can never be revealed again; analytics rows keep the
 * now-meaningless token. The delete and its audit row commit in one transaction.
 */
export function eraseRoutes(context: RouteContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.withTypeProvider<ZodTypeProvider>().post('/erase/preview', {
      config: {
        auditAction: 'erase.preview',
        rateLimit: {},
        permission: { allows: (permissions) => permissions.erase.size > 0, refuses: 'erasing values', denial: () => ({ reason: 'no erase permission' }) },
      },
      schema: {
        summary: 'What POST /erase would do with these tokens, changing nothing',
        description:
          'Per token: erasable (a vault row exists and your roles may erase its field), not_found (nothing stored: never ingested, or already erased), forbidden, or not_a_token. ' +
          'Reads only whether each vault row exists (nothing is decrypted); audited as erase.preview. The console shows it as the confirmation step.',
        tags: ['erase'],
        security: bearerSecurity,
        body: eraseBody,
        response: { 200: z.object({ results: z.array(previewResult) }), ...errorResponses },
      },
      handler: async (request) => {
        const principal = principalOf(request);
        const allowedFields = context.policy.permissionsFor(principal.roles).erase;
        const { purpose, ticket = null } = request.body;
        const requested = [...new Set(request.body.tokens)].map((token) => ({ token, field: parseToken(token)?.field }));
        const permitted = requested.flatMap((item) => (item.field !== undefined && allowedFields.has(item.field) ? [item.token] : []));
        const stored = await context.vault.present(permitted);
        const counts = { erasable: 0, not_found: 0, forbidden: 0, not_a_token: 0 };
        const results = requested.map((item): z.infer<typeof previewResult> => {
          if (item.field === undefined) {
            counts.not_a_token += 1;
            return notATokenFor(item.token);
          }
          if (!allowedFields.has(item.field)) {
            counts.forbidden += 1;
            return { token: item.token, field: item.field, error: 'forbidden' };
          }
          if (!stored.has(item.token)) {
            counts.not_found += 1;
            return { token: item.token, field: item.field, error: 'not_found' };
          }
          counts.erasable += 1;
          return { token: item.token, field: item.field, status: 'erasable' };
        });
        await context.auditor.record(request, {
          outcome: outcomeOf({ permitted: counts.erasable + counts.not_found, forbidden: counts.forbidden, invalid: counts.not_a_token }),
          reason: countsReason(counts),
          tokens: requested.flatMap((item) => (item.field === undefined ? [] : [item.token])),
          fieldCounts: {},
          purpose,
          ticket,
        });
        return { results };
      },
    });

    app.withTypeProvider<ZodTypeProvider>().post('/erase', {
      config: {
        auditAction: 'erase',
        rateLimit: {},
        permission: { allows: (permissions) => permissions.erase.size > 0, refuses: 'erasing values', denial: () => ({ reason: 'no erase permission' }) },
      },
      schema: {
        summary: 'Erase the stored originals of tokens (crypto-shredding)',
        tags: ['erase'],
        security: bearerSecurity,
        body: eraseBody,
        response: { 200: z.object({ results: z.array(eraseResult), audit_seq: auditSeqSchema }), ...errorResponses },
      },
      handler: async (request) => {
        const principal = principalOf(request);
        const allowedFields = context.policy.permissionsFor(principal.roles).erase;
        const { purpose, ticket = null } = request.body;
        const requested = [...new Set(request.body.tokens)].map((token) => ({ token, field: parseToken(token)?.field }));
        const wellFormed = requested.flatMap((item) => (item.field === undefined ? [] : [item.token]));
        const permitted = requested.filter((item) => item.field !== undefined && allowedFields.has(item.field));

        // Nothing is erased without its audit row: they commit together or not at all.
        const results = await context.auditor.commit(request, async ({ client }) => {
          const erased = await deleteVaultRows(
            client,
            permitted.map((item) => item.token),
          );
          const counts = { erased: 0, not_found: 0, forbidden: 0, not_a_token: 0 };
          const fieldCounts: Partial<Record<PiiField, number>> = {};
          const results = requested.map((item): EraseResult => {
            if (item.field === undefined) {
              counts.not_a_token += 1;
              return notATokenFor(item.token);
            }
            const error = !allowedFields.has(item.field) ? 'forbidden' : !erased.has(item.token) ? 'not_found' : undefined;
            if (error !== undefined) {
              counts[error] += 1;
              return { token: item.token, error };
            }
            counts.erased += 1;
            fieldCounts[item.field] = (fieldCounts[item.field] ?? 0) + 1;
            return { token: item.token, status: 'erased' };
          });
          const attempt = {
            outcome: outcomeOf({ permitted: counts.erased + counts.not_found, forbidden: counts.forbidden, invalid: counts.not_a_token }),
            reason: countsReason(counts),
            tokens: wellFormed,
            fieldCounts,
            purpose,
            ticket,
          };
          return { attempt, value: results };
        });
        return { results, audit_seq: auditSeqOf(request) };
      },
    });
  };
}
