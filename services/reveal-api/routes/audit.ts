import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseToken } from '../../../lib/crypto/tokens.js';
import { describeVerdict } from '../../../lib/audit/checkpointed-log-verifier.js';
import { auditRowJsonSchema } from '../../../lib/audit/audit-row.js';
import { rowJson } from '../../../lib/audit/chain.js';
import { countReadsBy, queryAuditLog } from '../../../lib/audit/reader.js';
import type { MonitorVerdict } from '../audit/monitor.js';
import type { PermissionRule } from '../http/authorize.js';
import { callerValueRefused, HttpError } from '../http/errors.js';
import { principalOf, type RouteContext } from './context.js';
import { bearerSecurity, errorResponses, filterTextSchema, instantSchema } from './schemas.js';

const auditQuery = z.object({
  actor: filterTextSchema(256).optional(),
  token: filterTextSchema(256).optional(),
  outcome: filterTextSchema(32).optional(),
  action: filterTextSchema(32).optional(),
  from: instantSchema.optional().describe('Inclusive lower bound (ISO-8601)'),
  to: instantSchema.optional().describe('Exclusive upper bound (ISO-8601)'),
  cursor: z.string().max(64).optional().describe('next_cursor of the previous page'),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

const verdict = z.object({
  ok: z.boolean(),
  mode: z.enum(['full', 'incremental']).describe('incremental: only rows appended since the last verified point were read'),
  checked: z.number().int().describe('rows whose hash was recomputed by this call'),
  verified_rows: z.number().int().describe('rows verified by this replica so far'),
  first_broken_seq: z.number().int().optional(),
  broken_checkpoint: z.number().int().optional(),
  reason: z.string().optional(),
  head: z.object({ seq: z.number().int(), hash: z.string() }).optional(),
  checkpoints: z.number().int(),
  findings: z
    .array(z.object({ seq: z.number().int().optional(), checkpoint: z.number().int().optional(), message: z.string() }))
    .describe('every finding (the first is also in first_broken_seq / broken_checkpoint / reason); empty when intact'),
  omitted_findings: z.number().int().describe('findings beyond the ones listed'),
  root: z.string().optional().describe('RFC 9162 Merkle root (hex) of rows 1..head, recomputed from the rows'),
  checkpoint: z
    .object({
      index: z.number().int(),
      kind: z.enum(['json', 'note']).describe('note: a C2SP signed checkpoint over the Merkle tree; json: a v1 checkpoint over the chain head'),
      seq: z.number().int(),
      time: z.string(),
      key_id: z.string(),
      signer: z.string(),
      signature_ok: z.boolean(),
      cosigned_by: z.array(z.string()).describe('witnesses whose cosignatures verified'),
    })
    .nullable()
    .optional()
    .describe('the newest checkpoint that verified and matches its row; null: none yet; absent: this server signs no checkpoints (AUDIT_SIGNING_KEY_ID unset)'),
  uncovered: z
    .object({
      from_seq: z.number().int(),
      to_seq: z.number().int(),
      rows: z.number().int(),
      own_reads: z.number().int().describe("how many of these rows are the caller's own reads of the log (audit_read, audit_verify, audit_export)"),
    })
    .nullable()
    .describe('rows after the newest checkpoint: not yet covered by a signature'),
  message: z.string(),
  budgets: z
    .object({
      ok: z.boolean().describe('false: a current window\'s stored usage was below the chain\'s count, or such a mismatch was recorded in the last 24 hours'),
      checked: z.number().int().describe('current budget windows (actor, budget) with values revealed in them, compared with the chain'),
      mismatches: z
        .array(z.object({ actor: z.string(), budget: z.string(), window_start: z.string(), stored: z.number().int(), chain: z.number().int() }))
        .describe('found by this call, and raised to the chain\'s count'),
      recorded: z
        .object({ count: z.number().int(), latest: z.array(z.object({ seq: z.number().int(), occurred_at: z.string(), reason: z.string() })) })
        .describe('budget.reconcile rows of the last 24 hours (every mismatch found, by any replica)'),
      message: z.string(),
    })
    .describe('budget usage (reveal_budget_usage) reconciled against the field_counts of the audit chain'),
});

type BudgetsVerdict = z.infer<typeof verdict>['budgets'];

/** Runs a reconciliation round (waiting for the elected replica if need be) and reads what the chain recorded. */
async function budgetsVerdict(context: RouteContext): Promise<BudgetsVerdict> {
  const [round, recorded] = await Promise.all([
    context.budgetReconciler.reconcileNow({ wait: true }).catch((error: unknown) => error as Error),
    context.budgetReconciler.recorded(),
  ]);
  if (round instanceof Error || round.status !== 'reconciled') {
    return { ok: false, checked: 0, mismatches: [], recorded, message: 'budget usage could not be reconciled against the audit chain now; retry' };
  }
  const mismatches = round.mismatches.map((mismatch) => ({
    actor: mismatch.actor,
    budget: mismatch.budget,
    window_start: new Date(mismatch.windowStart).toISOString(),
    stored: mismatch.stored,
    chain: mismatch.chain,
  }));
  const ok = mismatches.length === 0 && recorded.count === 0;
  return {
    ok,
    checked: round.checked,
    mismatches,
    recorded,
    message: ok
      ? `budget usage matches the audit chain in ${round.checked} current window(s)`
      : `budget usage was below what the audit chain shows: ${mismatches.length} window(s) now, ${recorded.count} recorded in the last 24 hours ` +
        '(usage reset by someone with database rights; each was raised to the chain\'s count)',
  };
}

async function presentVerdict(
  result: MonitorVerdict,
  checkpointsConfigured: boolean,
  budgets: BudgetsVerdict,
  ownReads: (fromSeq: number, toSeq: number) => Promise<number>,
): Promise<z.infer<typeof verdict>> {
  const failure = result.failure;
  const uncovered = result.uncovered;
  return {
    ok: result.ok,
    mode: result.mode,
    checked: result.checked,
    verified_rows: result.verifiedRows,
    ...(failure?.seq === undefined ? {} : { first_broken_seq: failure.seq }),
    ...(failure?.checkpoint === undefined ? {} : { broken_checkpoint: failure.checkpoint }),
    ...(failure === undefined ? {} : { reason: failure.message }),
    ...(result.head === undefined ? {} : { head: result.head }),
    findings: result.findings,
    omitted_findings: result.omittedFindings,
    ...(result.root === undefined ? {} : { root: result.root }),
    checkpoints: result.checkpoints,
    checkpoint: !checkpointsConfigured
      ? undefined
      : result.checkpoint === undefined
        ? null
        : {
            index: result.checkpoint.index,
            kind: result.checkpoint.kind,
            seq: result.checkpoint.seq,
            time: result.checkpoint.time,
            key_id: result.checkpoint.keyId,
            signer: result.checkpoint.signer,
            signature_ok: result.checkpoint.signatureOk,
            cosigned_by: result.checkpoint.cosignedBy,
          },
    uncovered:
      uncovered === null
        ? null
        : {
            from_seq: uncovered.fromSeq,
            to_seq: uncovered.toSeq,
            rows: uncovered.toSeq - uncovered.fromSeq + 1,
            own_reads: await ownReads(uncovered.fromSeq, uncovered.toSeq),
          },
    message: describeVerdict(result),
    budgets,
  };
}

/** What a refused export is told: roughly how long an export of a large log takes. */
const EXPORT_RETRY_AFTER_SECONDS = 30;

/** Opaque cursor: base64url of the last seq served. */
export function encodeCursor(seq: number): string {
  return Buffer.from(String(seq), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[1-9][0-9]{0,15}$/.test(text)) throw new HttpError(400, 'invalid_request', 'query.cursor: not a cursor returned by this API');
  return Number(text);
}

/** The audit log is read by roles with `audit: true`; a refusal names the token it asked about, if any. */
function auditorOnly(tokensOf: (request: FastifyRequest) => string[] = () => []): PermissionRule {
  return {
    allows: (permissions) => permissions.audit,
    refuses: 'reading the audit log',
    denial: (request) => ({ reason: 'no audit permission', tokens: tokensOf(request) }),
  };
}

/** A token filter is audited when it is well-formed (a raw value pasted there is not). */
function queriedTokens(query: { token?: string | undefined }): string[] {
  return query.token !== undefined && parseToken(query.token) !== undefined ? [query.token] : [];
}

export function auditRoutes(context: RouteContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.withTypeProvider<ZodTypeProvider>().get('/audit', {
      config: { auditAction: 'audit_read', rateLimit: {}, permission: auditorOnly((request) => queriedTokens(request.query as { token?: string })) },
      schema: {
        summary: 'Read the audit log, newest first',
        tags: ['audit'],
        security: bearerSecurity,
        querystring: auditQuery,
        response: { 200: z.object({ entries: z.array(auditRowJsonSchema), next_cursor: z.string().optional() }), ...errorResponses },
      },
      handler: async (request) => {
        const query = request.query;
        const tokens = queriedTokens(query);
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
          entries: page.entries.map(rowJson),
          ...(page.nextBeforeSeq === undefined ? {} : { next_cursor: encodeCursor(page.nextBeforeSeq) }),
        };
      },
    });

    app.withTypeProvider<ZodTypeProvider>().get('/audit/verify', {
      config: { auditAction: 'audit_verify', rateLimit: {}, permission: auditorOnly() },
      schema: {
        summary: 'Verify the audit log against its signed checkpoints, and budget usage against the log',
        description:
          'Recomputes the whole hash chain and Merkle tree (or, with `incremental=true`, only the rows appended since the last verified point: ' +
          'cheaper, but blind to edits of rows verified earlier), checks every stored ' +
          'checkpoint\'s signatures, cosignatures and links, and that each checkpoint\'s root (or v1 head) is what the rows reproduce. ' +
          '`findings` lists everything found wrong; `uncovered` names the rows after the newest checkpoint: not yet covered by a signature. ' +
          'Parallel calls share one run. `budgets` reconciles the ' +
          'stored budget usage against the values the chain records as revealed in each current window.',
        tags: ['audit'],
        security: bearerSecurity,
        querystring: z.object({
          incremental: z.enum(['true', 'false']).default('false').describe('only the rows appended since the last verified point'),
        }),
        response: { 200: verdict, ...errorResponses },
      },
      handler: async (request) => {
        const [result, budgets] = await Promise.all([context.auditMonitor.verify({ full: request.query.incremental !== 'true' }), budgetsVerdict(context)]);
        await context.auditor.record(request, {
          outcome: 'allowed',
          reason: `${
            result.ok
              ? `chain ok ${result.mode} checked=${result.checked} head=${result.head?.seq ?? 0} checkpoint=${result.checkpoint?.index ?? 'none'}`
              : `chain broken: ${result.failure?.message ?? ''}`.slice(0, 500)
          } budgets=${budgets.ok ? 'ok' : `mismatch now=${budgets.mismatches.length} recorded=${budgets.recorded.count}`}`,
          tokens: [],
          purpose: null,
          ticket: null,
        });
        const caller = principalOf(request).sub;
        return presentVerdict(result, context.auditSigner !== undefined, budgets, (fromSeq, toSeq) => countReadsBy(context.pool, caller, fromSeq, toSeq));
      },
    });

    app.withTypeProvider<ZodTypeProvider>().get('/audit/export', {
      config: { auditAction: 'audit_export', rateLimit: {}, permission: auditorOnly() },
      schema: {
        summary: 'Export the audit log as NDJSON for offline verification',
        description:
          'Streams an `{"type":"export_start",...}` line, then `{"type":"row",...}` lines in seq order, then the checkpoint records ' +
          '(`note_checkpoint` and v1 `checkpoint` lines) stored when it started (docs/audit-format.md). ' +
          'Resume an interrupted download with `after_seq` = the last seq received. One export runs at a time per replica ' +
          '(AUDIT_EXPORTS_MAX), in a low-priority process of its own so it cannot slow reveals: another answers 429 export_busy ' +
          'with Retry-After. A download cut off before its end failed: resume it. Verify with ' +
          '`npm run audit:verify -- --export FILE --checkpoints FILE --public-key FILE`.',
        tags: ['audit'],
        security: bearerSecurity,
        querystring: z.object({ after_seq: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0) }),
        response: errorResponses,
      },
      handler: async (request, reply) => {
        const afterSeq = request.query.after_seq;
        const lease = context.auditExporter.acquire();
        if (lease === undefined) {
          // Audited as a refusal (outcome rate_limited) by the error handler.
          throw new HttpError(429, 'export_busy', 'an audit export is already running on this replica (exports run one at a time so they cannot slow reveals); retry later, or run npm run audit:export against the database', {
            headers: { 'retry-after': String(EXPORT_RETRY_AFTER_SECONDS) },
          });
        }
        try {
          await context.auditor.record(request, { outcome: 'allowed', reason: `export after_seq=${afterSeq}`, tokens: [], purpose: null, ticket: null });
        } catch (error) {
          lease.release();
          throw error;
        }
        return (
          reply
            .type('application/x-ndjson; charset=utf-8')
            .header('content-disposition', 'attachment; filename="audit-export.ndjson"')
            // A stream is sent as-is (no serializer): the typed reply only knows the JSON error shapes.
            .send(lease.start(afterSeq) as never)
        );
      },
    });

    app.get('/audit/public-key', { schema: { summary: 'The public key that verifies audit checkpoints (PEM)', tags: ['audit'] } }, async (_request, reply) => {
      if (context.auditSigner === undefined) {
        throw new HttpError(404, 'not_configured', 'audit checkpoints are not configured (set AUDIT_SIGNING_KEY_ID)');
      }
      return reply.type('application/x-pem-file').header('x-audit-key-id', context.auditSigner.keyId).send(context.auditSigner.publicKeyPem);
    });
  };
}

