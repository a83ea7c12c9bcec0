import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseToken } from '../../../lib/crypto/tokens.js';
import { queryAuditLog, verifyAuditChain } from '../audit/reader.js';
import type { AuditRow } from '../audit/chain.js';
import { callerValueRefused, ForbiddenError, HttpError } from '../http/errors.js';
import { principalOf, type RouteContext } from './context.js';
import { bearerSecurity, errorResponses, filterTextSchema, instantSchema } from './schemas.js';

const auditQuery = z.object({
  actor: filterTextSchema(256).optional(),
  token: filterTextSchema(256).optional(),
  outcome: filterTextSchema(32).optional(),
  action: filterTextSchema(32).optional(),
  from: instantSchema.optional().describe('Inclusive lower bound (ISO-8601)'),
  to: instantSchema.optional().describe('Exclusive upper bound (ISO-8601)'),
  cursor: z.string().max(64).optional().describe('nextCursor of the previous page'),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

const auditEntry = z.object({
  seq: z.number().int(),
  occurredAt: z.string(),
  action: z.string(),
  actor: z.string().nullable(),
  roles: z.array(z.string()),
  clientAddress: z.string().nullable(),
  requestId: z.string().nullable(),
  purpose: z.string().nullable(),
  ticket: z.string().nullable(),
  tokens: z.array(z.string()),
  fieldCounts: z.record(z.string(), z.number()),
  outcome: z.string(),
  reason: z.string().nullable(),
  prevHash: z.string().nullable(),
  hash: z.string(),
});

const verdict = z.object({
  ok: z.boolean(),
  checked: z.number().int(),
  firstBrokenSeq: z.number().int().optional(),
  reason: z.string().optional(),
  head: z.object({ seq: z.number().int(), hash: z.string() }).optional(),
});

/** Opaque cursor: base64url of the last seq served. */
export function encodeCursor(seq: number): string {
  return Buffer.from(String(seq), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[1-9][0-9]{0,15}$/.test(text)) throw new HttpError(400, 'invalid_request', 'query.cursor: not a cursor returned by this API');
  return Number(text);
}

function present(row: AuditRow): z.infer<typeof auditEntry> {
  return { ...row, prevHash: row.prevHash?.toString('hex') ?? null, hash: row.hash.toString('hex') };
}

export function auditRoutes(context: RouteContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    const requireAuditor = async (request: Parameters<RouteContext['authenticate']>[0], tokens: string[]) => {
      if (!context.policy.permissionsFor(principalOf(request).roles).audit) {
        await context.auditor.record(request, { outcome: 'denied', reason: 'no audit permission', tokens });
        throw new ForbiddenError('your roles do not allow reading the audit log');
      }
    };

    app.withTypeProvider<ZodTypeProvider>().get('/audit', {
      config: { auditAction: 'audit_read', rateLimit: {} },
      preValidation: context.authenticate,
      schema: {
        summary: 'Read the audit log, newest first',
        tags: ['audit'],
        security: bearerSecurity,
        querystring: auditQuery,
        response: { 200: z.object({ entries: z.array(auditEntry), nextCursor: z.string().optional() }), ...errorResponses },
      },
      handler: async (request) => {
        const query = request.query;
        const tokens = query.token !== undefined && parseToken(query.token) !== undefined ? [query.token] : [];
        await requireAuditor(request, tokens);
        const beforeSeq = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
        const page = await queryAuditLog(context.pool, { ...query, beforeSeq }).catch((error: unknown) => {
          throw callerValueRefused(error, 'a filter value');
        });
        const filters = ['actor', 'token', 'outcome', 'action', 'from', 'to'].filter((name) => query[name as keyof typeof query] !== undefined);
        // Who read the audit log is itself audited (filters named, not their values).
        await context.auditor.record(request, {
          outcome: 'allowed',
          reason: `entries=${page.entries.length}${filters.length > 0 ? ` filters=${filters.join(',')}` : ''}`,
          tokens,
          purpose: null,
          ticket: null,
        });
        return {
          entries: page.entries.map(present),
          ...(page.nextBeforeSeq === undefined ? {} : { nextCursor: encodeCursor(page.nextBeforeSeq) }),
        };
      },
    });

    app.withTypeProvider<ZodTypeProvider>().get('/audit/verify', {
      config: { auditAction: 'audit_verify', rateLimit: {} },
      preValidation: context.authenticate,
      schema: {
        summary: 'Verify the hash chain of the whole audit log',
        description: 'Detects edited, deleted and reordered rows. Anchor `head` elsewhere to also detect a truncated tail.',
        tags: ['audit'],
        security: bearerSecurity,
        response: { 200: verdict, ...errorResponses },
      },
      handler: async (request) => {
        await requireAuditor(request, []);
        const result = await verifyAuditChain(context.pool);
        await context.auditor.record(request, {
          outcome: 'allowed',
          reason: result.ok ? `chain ok checked=${result.checked}` : `chain broken at seq ${result.firstBrokenSeq}`,
          tokens: [],
          purpose: null,
          ticket: null,
        });
        return result;
      },
    });
  };
}
