import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PII_FIELDS } from '../../../lib/crypto/normalize.js';
import { listOpenFor } from '../approvals/store.js';
import { readStandings, type BudgetStanding } from '../../../lib/budget/ledger.js';
import { limitsFor } from '../budget/standing.js';
import { MAX_TOKENS_PER_REQUEST } from './schemas.js';
import { principalOf, type RouteContext } from './context.js';
import { bearerSecurity, errorResponses } from './schemas.js';

const standingView = z.object({
  budget: z.enum(['minute', 'hour', 'day', 'break_glass']),
  limit: z.number().int(),
  used: z.number().int(),
  remaining: z.number().int(),
  reset_at: z.string(),
});

const fieldView = z.object({
  reveal: z.enum(['plain', 'masked']).nullable().describe('How this field is revealed to you; null: not at all'),
  approval: z
    .string()
    .describe("'never', 'always', or 'above N' (values in one request); 'not applicable' when you cannot reveal the field"),
  tokenize: z.boolean(),
  erase: z.boolean(),
});

const me = z.object({
  subject: z.string(),
  roles: z.array(z.string()),
  unknown_roles: z.array(z.string()).describe('Roles in your token that the policy does not know (they grant nothing)'),
  fields: z.record(z.string(), fieldView),
  audit: z.boolean(),
  approve: z.boolean(),
  break_glass: z.boolean(),
  budgets: z.array(standingView).describe('Windowed budgets; a window not listed is unlimited'),
  break_glass_budget: standingView.nullable(),
  requests: z
    .array(
      z.object({
        id: z.string(),
        status: z.enum(['pending', 'approved']),
        purpose: z.string(),
        ticket: z.string().nullable(),
        field_counts: z.record(z.string(), z.number()),
        approvals: z.number().int(),
        approvals_required: z.number().int(),
        created_at: z.string(),
        expires_at: z.string(),
      }),
    )
    .describe('Your reveal requests still pending or waiting to be collected'),
});

const view = (standing: BudgetStanding) => ({
  budget: standing.budget,
  limit: standing.limit,
  used: standing.used,
  remaining: standing.remaining,
  reset_at: new Date(standing.resetAt).toISOString(),
});

/** The caller's own view: who they are to the API, what the policy lets them do, and what is left. */
export function meRoutes(context: RouteContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.withTypeProvider<ZodTypeProvider>().get('/me', {
      config: { permission: 'authenticated' },
      schema: {
        summary: 'Your subject, roles, permissions per field, remaining budgets and open reveal requests',
        tags: ['me'],
        security: bearerSecurity,
        response: { 200: me, ...errorResponses },
      },
      handler: async (request) => {
        const principal = principalOf(request);
        const { policy } = context;
        const permissions = policy.permissionsFor(principal.roles);
        const windowed = limitsFor(permissions, false);
        const breakGlass = limitsFor(permissions, true);
        const [standings, open] = await Promise.all([
          readStandings(context.pool, principal.sub, [...windowed, ...breakGlass]),
          listOpenFor(context.pool, principal.sub, 100),
        ]);
        const fields = Object.fromEntries(
          PII_FIELDS.map((field) => [
            field,
            {
              reveal: permissions.reveal[field] ?? null,
              approval: permissions.reveal[field] === undefined ? 'not applicable' : approvalRule(context, principal.roles, field),
              tokenize: permissions.tokenize.has(field),
              erase: permissions.erase.has(field),
            },
          ]),
        );
        const breakGlassStanding = standings.find((standing) => standing.budget === 'break_glass');
        return {
          subject: principal.sub,
          roles: [...principal.roles],
          unknown_roles: principal.roles.filter((role) => !policy.roles.includes(role)),
          fields,
          audit: permissions.audit,
          approve: permissions.approve,
          break_glass: permissions.breakGlassPerDay !== undefined,
          budgets: standings.filter((standing) => standing.budget !== 'break_glass').map(view),
          break_glass_budget: breakGlassStanding === undefined ? null : view(breakGlassStanding),
          requests: open.map((item) => ({
            id: item.id,
            status: item.status as 'pending' | 'approved',
            purpose: item.purpose,
            ticket: item.ticket,
            field_counts: item.fieldCounts,
            approvals: item.approvals.length,
            approvals_required: context.approvals.required(item),
            created_at: item.createdAt.toISOString(),
            expires_at: item.expiresAt.toISOString(),
          })),
        };
      },
    });
  };
}

/** Approval for one field, as the smallest request size that needs it. */
function approvalRule(context: RouteContext, roles: readonly string[], field: (typeof PII_FIELDS)[number]): string {
  const fields = new Set([field]);
  if (context.policy.needsApproval(roles, { fields, values: 1 })) return 'always';
  for (let values = 2; values <= MAX_TOKENS_PER_REQUEST; values += 1) {
    if (context.policy.needsApproval(roles, { fields, values })) return `above ${values - 1}`;
  }
  return 'never';
}
