import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PiiField } from '../../../lib/crypto/normalize.js';
import { budgetHeaders, exhaustedMessage, limitsFor, retryAfterSeconds } from '../budget/standing.js';
import { auditSeqOf, countsReason, outcomeOf, type Attempt } from '../audit/auditor.js';
import { BudgetExhaustedError } from '../http/errors.js';
import { principalOf, type RouteContext } from './context.js';
import { parseRequested, resolveTokens, revealResult } from './reveal-results.js';
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
        const grants = permissions.reveal;
        const { purpose, ticket = null, break_glass: breakGlass = false } = request.body;
        const requested = parseRequested(request.body.tokens);
        const wellFormed = requested.flatMap((item) => (item.field === undefined ? [] : [item.token]));

        const permitted = requested.flatMap((item) => (item.field !== undefined && grants[item.field] !== undefined ? [{ token: item.token, field: item.field }] : []));
        if (!breakGlass && context.policy.needsApproval(principal.roles, { fields: new Set(permitted.map((item) => item.field)), values: permitted.length })) {
          const fieldCounts: Partial<Record<PiiField, number>> = {};
          for (const item of permitted) fieldCounts[item.field] = (fieldCounts[item.field] ?? 0) + 1;
          const created = await context.approvals.request(request, principal, { tokens: wellFormed, fieldCounts, purpose, ticket });
          return reply.code(202).send({
            request_id: created.id,
            status: 'pending_approval' as const,
            approvals_required: created.approvalsRequired,
            expires_at: created.expiresAt.toISOString(),
            audit_seq: auditSeqOf(request),
          });
        }

        const limits = limitsFor(permissions, breakGlass);
        const known = context.exhaustedBudgets.exhausted(principal.sub, limits);
        if (known !== undefined) {
          // Known to be used up until its window resets: refused without a transaction (the
          // error handler audits the first such refusal and summarises the rest).
          context.metrics.budgetExhausted.inc({ budget: known.budget });
          throw new BudgetExhaustedError(exhaustedMessage(known, permitted.length), { ...budgetHeaders([known]), 'retry-after': String(retryAfterSeconds(known)) });
        }

        const { results, counts, fieldCounts } = await resolveTokens(context.vault, grants, requested);
        const outcome = outcomeOf({
          permitted: requested.length - counts.forbidden - counts.not_a_token,
          forbidden: counts.forbidden,
          invalid: counts.not_a_token,
        });
        const attempt: Attempt = {
          ...(breakGlass ? { action: 'reveal.break_glass' } : {}),
          outcome,
          reason: breakGlass ? `break_glass ${countsReason(counts)}` : countsReason(counts),
          tokens: wellFormed,
          fieldCounts,
          purpose,
          ticket,
        };
        // Fail closed: if this row cannot be committed, the values above never leave the process.
        if (limits.length === 0) {
          await context.auditor.record(request, attempt);
        } else {
          const decision = await context.auditor.recordCharged(request, attempt, { actor: principal.sub, amount: counts.revealed, limits }, (refused) => ({
            ...attempt,
            outcome: 'rate_limited',
            reason: `budget_exhausted budget=${refused.exhausted?.budget ?? 'unknown'} remaining=${refused.exhausted?.remaining ?? 0} asked=${counts.revealed}`,
            fieldCounts: {},
          }));
          context.exhaustedBudgets.note(principal.sub, decision);
          if (!decision.granted && decision.exhausted !== undefined) {
            context.metrics.budgetExhausted.inc({ budget: decision.exhausted.budget });
            throw new BudgetExhaustedError(exhaustedMessage(decision.exhausted, counts.revealed), {
              ...budgetHeaders(decision.standings),
              'retry-after': String(retryAfterSeconds(decision.exhausted)),
            });
          }
          reply.headers(budgetHeaders(decision.standings));
        }
        if (breakGlass) context.metrics.breakGlassReveals.inc();
        for (const [field, count] of Object.entries(fieldCounts)) {
          context.metrics.revealedValues.inc({ field, redaction: grants[field as PiiField] === 'plain' ? 'none' : 'masked' }, count);
        }
        return { results, audit_seq: auditSeqOf(request) };
      },
    });
  };
}
