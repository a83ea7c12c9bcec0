import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { budgetHeaders, limitsFor } from '../budget/standing.js';
import { auditSeqOf, countsReason, type Attempt } from '../audit/auditor.js';
import { revealAttemptOf } from '../reveal/reveal.js';
import { triageTokens } from '../reveal/triage.js';
import { principalOf, type RouteContext } from './context.js';
import { revealResult, revealResultOf } from './reveal-results.js';
import { auditSeqSchema, bearerSecurity, errorResponses, MAX_TOKENS_PER_REQUEST, purposeSchema, ticketSchema, tokenSchema } from './schemas.js';

const revealBody = z.object({
  tokens: z.array(tokenSchema).min(1).max(MAX_TOKENS_PER_REQUEST),
  purpose: purposeSchema,
  ticket: ticketSchema.optional(),
  break_glass: z
    .boolean()
    .optional()
    .describe('Reveal now without waiting for approval (roles with break_glass only): audited as reveal.break_glass, drawn from its own daily budget'),
});

/** Validated before the permission check runs. */
const bodyOf = (request: FastifyRequest) => request.body as z.infer<typeof revealBody>;

export const pendingApproval = z.object({
  request_id: z.string().uuid(),
  status: z.literal('pending_approval'),
  approvals_required: z.number().int(),
  expires_at: z.string().describe('Approvers must decide before this instant (ISO 8601)'),
  audit_seq: auditSeqSchema,
});

export function revealRoutes(context: RouteContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.withTypeProvider<ZodTypeProvider>().post('/reveal', {
      config: {
        auditAction: 'reveal',
        rateLimit: {},
        permission: [
          { allows: (permissions) => Object.keys(permissions.reveal).length > 0, refuses: 'revealing values', denial: () => ({ reason: 'no reveal permission' }) },
          {
            allows: (permissions, request) => !bodyOf(request).break_glass || permissions.breakGlassPerDay !== undefined,
            refuses: 'break-glass reveals',
            denial: () => ({ action: 'reveal.break_glass', reason: 'break_glass_not_allowed' }),
          },
        ],
      },
      schema: {
        summary: 'Reveal the original values of tokens',
        description: [
          'Each token is answered once (duplicates collapse). The attempt is written to the audit log, and committed, before any value is returned.',
          'Values revealed draw on the caller\'s budgets (per minute/hour/day, shared by every replica); the remaining budget is in the X-Budget-Remaining-<Window> headers, and a reveal that would exceed one answers 429 budget_exhausted and reveals nothing.',
          'When the policy requires approval for this request, it answers 202 with a request id and decrypts nothing: collect the values with GET /reveal-requests/{id} once approved.',
        ].join(' '),
        tags: ['reveal'],
        security: bearerSecurity,
        body: revealBody,
        response: { 200: z.object({ results: z.array(revealResult), audit_seq: auditSeqSchema }), 202: pendingApproval, ...errorResponses },
      },
      handler: async (request, reply) => {
        const principal = principalOf(request);
        const permissions = context.policy.permissionsFor(principal.roles);
        const { purpose, ticket = null, break_glass: breakGlass = false } = request.body;
        const triage = triageTokens(request.body.tokens, permissions.reveal);

        const fields = new Set(triage.permitted.map((item) => item.field));
        if (!breakGlass && context.policy.needsApproval(principal.roles, { fields, values: triage.permitted.length })) {
          const created = await context.approvals.request(request, principal, { tokens: [...triage.wellFormed], fieldCounts: triage.permittedFields, purpose, ticket });
          return reply.code(202).send({
            request_id: created.id,
            status: 'pending_approval' as const,
            approvals_required: created.approvalsRequired,
            expires_at: created.expiresAt.toISOString(),
            audit_seq: auditSeqOf(request),
          });
        }

        const limits = limitsFor(permissions, breakGlass);
        // Known to be used up until its window resets: refused without a transaction (the
        // error handler audits the first such refusal and summarises the rest).
        context.reveals.refuseIfKnownExhausted(principal.sub, limits, triage.permitted.length);

        const resolved = await context.reveals.resolve(triage);
        const { counts } = resolved;
        const attempt: Attempt = {
          ...revealAttemptOf(resolved),
          ...(breakGlass ? { action: 'reveal.break_glass', reason: `break_glass ${countsReason(counts)}` } : {}),
          tokens: triage.wellFormed,
          purpose,
          ticket,
        };
        // Fail closed: if this row cannot be committed, the values above never leave the process.
        const standings = await context.reveals.reveal(request, {
          grants: permissions.reveal,
          revealed: counts.revealed,
          attempt,
          budget: {
            actor: principal.sub,
            limits,
            refused: (exhausted) => ({
              ...attempt,
              outcome: 'rate_limited',
              reason: `budget_exhausted budget=${exhausted?.budget ?? 'unknown'} remaining=${exhausted?.remaining ?? 0} asked=${counts.revealed}`,
              fieldCounts: {},
            }),
          },
        });
        if (limits.length > 0) reply.headers(budgetHeaders(standings));
        if (breakGlass) context.metrics.breakGlassReveals.inc();
        return { results: resolved.resolutions.map(revealResultOf), audit_seq: auditSeqOf(request) };
      },
    });
  };
}
