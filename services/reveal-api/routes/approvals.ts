import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { listPending, type RevealRequest } from '../approvals/store.js';
import { ForbiddenError } from '../http/errors.js';
import { principalOf, type RouteContext } from './context.js';
import { bearerSecurity, errorResponses, errorResponseSchema } from './schemas.js';

const MAX_LISTED = 200;

export const requestIdParams = z.object({ id: z.string().uuid({ message: 'expected a reveal request id (UUID)' }) });

/** What approvers see: who asks, why, and how much; never tokens or values. */
export const pendingRequestView = z.object({
  id: z.string(),
  requester: z.string(),
  requester_roles: z.array(z.string()),
  purpose: z.string(),
  ticket: z.string().nullable(),
  field_counts: z.record(z.string(), z.number()),
  values: z.number().int(),
  approvals: z.array(z.object({ approver: z.string(), at: z.string() })),
  approvals_required: z.number().int(),
  created_at: z.string(),
  expires_at: z.string(),
  age_seconds: z.number().int(),
});

export function pendingView(request: RevealRequest, nowMs = Date.now()): z.infer<typeof pendingRequestView> {
  return {
    id: request.id,
    requester: request.requester,
    requester_roles: request.roles,
    purpose: request.purpose,
    ticket: request.ticket,
    field_counts: request.fieldCounts,
    values: Object.values(request.fieldCounts).reduce((sum, count) => sum + count, 0),
    approvals: request.approvals.map((approval) => ({ approver: approval.approver, at: approval.at })),
    approvals_required: request.approvalsRequired,
    created_at: request.createdAt.toISOString(),
    expires_at: request.expiresAt.toISOString(),
    age_seconds: Math.max(0, Math.floor((nowMs - request.createdAt.getTime()) / 1000)),
  };
}

const decisionBody = z.object({
  decision: z.enum(['approve', 'deny']),
  reason: z.string().trim().min(3, { message: 'give a reason of at least 3 characters' }).max(500),
});

const decisionResult = z.object({
  id: z.string(),
  status: z.enum(['pending', 'approved', 'denied', 'collected', 'expired']),
  approvals: z.number().int(),
  approvals_required: z.number().int(),
  expires_at: z.string(),
});

/** Four-eyes approval: approvers list pending reveal requests and approve or deny them. */
export function approvalRoutes(context: RouteContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    const typed = app.withTypeProvider<ZodTypeProvider>();
    typed.get('/approvals', {
      preValidation: context.authenticate,
      schema: {
        summary: 'List reveal requests waiting for approval (approvers)',
        description: "Oldest first, at most 200. The caller's own requests are not listed: nobody approves their own.",
        tags: ['approvals'],
        security: bearerSecurity,
        response: { 200: z.object({ requests: z.array(pendingRequestView) }), ...errorResponses },
      },
      handler: async (request) => {
        const principal = principalOf(request);
        if (!context.policy.permissionsFor(principal.roles).approve) throw new ForbiddenError('your roles do not allow approving reveal requests');
        await context.approvals.expireDue().catch((error: unknown) => request.log.warn({ err: error }, 'expiring reveal requests failed'));
        const pending = await listPending(context.pool, MAX_LISTED);
        return { requests: pending.filter((item) => item.requester !== principal.sub).map((item) => pendingView(item)) };
      },
    });

    typed.post('/approvals/:id', {
      config: { auditAction: 'approval.decide', rateLimit: {} },
      preValidation: context.authenticate,
      schema: {
        summary: 'Approve or deny a reveal request (approvers; never your own)',
        description: 'Audited as approval.approve or approval.deny with the reveal request id in request_id, refusals included.',
        tags: ['approvals'],
        security: bearerSecurity,
        params: requestIdParams,
        body: decisionBody,
        response: { 200: decisionResult, 404: errorResponseSchema, 409: errorResponseSchema, 410: errorResponseSchema, ...errorResponses },
      },
      handler: async (request) => {
        const principal = principalOf(request);
        const decided = await context.approvals.decide(request, principal, request.params.id, request.body.decision, request.body.reason);
        return {
          id: decided.id,
          status: decided.status,
          approvals: decided.approvals.length,
          approvals_required: decided.approvalsRequired,
          expires_at: decided.expiresAt.toISOString(),
        };
      },
    });
  };
}
