import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { listPending, type RevealRequest } from '../approvals/store.js';
import type { Attempt } from '../audit/auditor.js';
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

/** A decision refused before the request is read: the step it would have been, under the request's id. */
function refusedStep(request: FastifyRequest): Omit<Attempt, 'outcome' | 'reason'> {
  const { decision } = request.body as z.infer<typeof decisionBody>;
  const { id } = request.params as z.infer<typeof requestIdParams>;
  return { action: decision === 'approve' ? 'approval.approve' : 'approval.deny', requestId: id, tokens: [], fieldCounts: {}, purpose: null, ticket: null };
}

/** Four-eyes approval: approvers list pending reveal requests and approve or deny them. */
export function approvalRoutes(context: RouteContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    const typed = app.withTypeProvider<ZodTypeProvider>();
    typed.get('/approvals', {
      config: { permission: { allows: (permissions) => permissions.approve, refuses: 'approving reveal requests', denial: () => ({ reason: 'not_an_approver' }) } },
      schema: {
        summary: 'List reveal requests waiting for approval (approvers)',
        description: "Oldest first, at most 200. The caller's own requests are not listed: nobody approves their own.",
        tags: ['approvals'],
        security: bearerSecurity,
        response: { 200: z.object({ requests: z.array(pendingRequestView) }), ...errorResponses },
      },
      handler: async (request) => {
        const principal = principalOf(request);
        await context.approvals.expireDue().catch((error: unknown) => request.log.warn({ err: error }, 'expiring reveal requests failed'));
        const pending = await listPending(context.pool, MAX_LISTED);
        return {
          requests: pending.filter((item) => item.requester !== principal.sub).map((item) => pendingView({ ...item, approvalsRequired: context.approvals.required(item) })),
        };
      },
    });

    typed.post('/approvals/:id', {
      config: {
        auditAction: 'approval.decide',
        rateLimit: {},
        // Audited as the step it would have been, under the reveal request's id.
        permission: {
          allows: (permissions) => permissions.approve,
          refuses: 'approving reveal requests',
          denial: (request) => ({ ...refusedStep(request), reason: 'not_an_approver' }),
        },
      },
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
