import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { principalOf, type RouteContext } from './context.js';
import { requestIdParams } from './approvals.js';
import { revealResult, revealResultOf } from './reveal-results.js';
import { auditSeqOf } from '../audit/auditor.js';
import { auditSeqSchema, bearerSecurity, errorResponses, errorResponseSchema } from './schemas.js';

const collection = z.object({
  id: z.string(),
  status: z.enum(['pending', 'collected']).describe('pending: not approved yet, poll again; collected: results hold the values (once)'),
  approvals: z.number().int(),
  approvals_required: z.number().int(),
  expires_at: z.string(),
  results: z.array(revealResult).describe('Shaped like POST /reveal results; empty while pending'),
  audit_seq: auditSeqSchema.optional().describe("Collected: the seq of the reveal.collect audit entry (also X-Audit-Seq); its receipt is GET /audit/entries/{seq}. Absent while pending (a poll writes nothing)"),
});

/** The requester's side of four-eyes reveals: poll, then collect the values once. */
export function revealRequestRoutes(context: RouteContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.withTypeProvider<ZodTypeProvider>().get('/reveal-requests/:id', {
      // The requester only: the desk checks who asks, and audits a stranger's attempt.
      config: { auditAction: 'reveal.collect', rateLimit: {}, permission: 'authenticated' },
      schema: {
        summary: 'Poll a reveal request, and collect its values once approved (the requester only, once, before it expires)',
        description:
          'Pending: status only (not audited). Approved: the values are revealed, drawn on your budgets, and the request becomes collected (audited as reveal.collect). Denied (403 request_denied), already collected (409 already_collected), expired (410 request_expired) and other people\'s requests (404) reveal nothing and are audited.',
        tags: ['approvals'],
        security: bearerSecurity,
        params: requestIdParams,
        response: { 200: collection, 404: errorResponseSchema, 409: errorResponseSchema, 410: errorResponseSchema, ...errorResponses },
      },
      handler: async (request, reply) => {
        const principal = principalOf(request);
        const outcome = await context.approvals.collect(request, principal, request.params.id);
        if ('results' in outcome) {
          reply.headers(outcome.headers);
          return {
            id: outcome.request.id,
            status: 'collected' as const,
            approvals: outcome.request.approvals.length,
            approvals_required: outcome.request.approvalsRequired,
            expires_at: outcome.request.expiresAt.toISOString(),
            results: outcome.results.map(revealResultOf),
            audit_seq: auditSeqOf(request),
          };
        }
        return {
          id: outcome.id,
          status: 'pending' as const,
          approvals: outcome.approvals.length,
          approvals_required: outcome.approvalsRequired,
          expires_at: outcome.expiresAt.toISOString(),
          results: [],
        };
      },
    });
  };
}
