import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PII_FIELDS, type PiiField } from '../../../lib/crypto/normalize.js';
import { parseToken } from '../../../lib/crypto/tokens.js';
import { auditSeqOf, type Attempt } from '../http/auditor.js';
import type { PermissionRule } from '../http/authorize.js';
import { maskValue } from '../policy/mask.js';
import type { Redaction } from '../policy/policy.js';
import type { VaultLookup } from '../vault/vault.js';
import { principalOf, type RouteContext } from './context.js';
import { auditSeqSchema, bearerSecurity, errorResponses, purposeSchema, ticketSchema } from './schemas.js';
import { auditTrailSchema, personAuditTrail } from './person-audit-trail.js';

/**
 * Requests about one person (data-subject access and erasure). They arrive with a user_id,
 * not with tokens. The reveal_api role cannot read user_logins: it calls two owner functions
 * (migration 0007) that act on one user_id at a time. Purpose and ticket are required.
 */
const personBody = z.object({
  user_id: z.string().trim().min(1).max(128).describe('The person, as user_logins.user_id'),
  purpose: purposeSchema,
  ticket: ticketSchema,
});

/** A refusal names the person asked about (the body is validated before the permission check runs). */
function personPermission(kind: 'access' | 'erase', allows: PermissionRule['allows'], refuses: string): PermissionRule {
  return {
    allows,
    refuses,
    denial: (request) => ({ reason: `user_id=${(request.body as z.infer<typeof personBody>).user_id}: no person ${kind} permission`, tokens: [] }),
  };
}

const valueResult = z.union([
  z.object({ token: z.string(), value: z.string(), redaction: z.enum(['none', 'masked']) }),
  z.object({ token: z.string(), error: z.enum(['not_found', 'withheld', 'undecryptable']) }),
]);
type ValueResult = z.infer<typeof valueResult>;

const login = z.object({
  message_id: z.string(),
  create_date: z.string(),
  sent_at: z.string(),
  ingested_at: z.string(),
  device_type: z.string(),
  locale: z.string().nullable(),
  app_version: z.string(),
  ip: valueResult,
  device_id: valueResult,
});

const accessResponse = z.object({
  user_id: z.string(),
  generated_at: z.string(),
  counts: z.object({
    rows: z.number(),
    partitions: z.number(),
    distinct_values: z.object({ ip: z.number(), device_id: z.number() }),
    revealed: z.number(),
    masked: z.number(),
    withheld: z.number(),
    not_found: z.number(),
  }),
  logins: z.array(login),
  audit_trail: auditTrailSchema,
  not_included: z.string(),
  audit_seq: auditSeqSchema,
});

const eraseResponse = z.object({
  user_id: z.string(),
  rows_deleted: z.number(),
  partitions: z.array(z.string()),
  values_shredded: z.object({ ip: z.number(), device_id: z.number() }),
  values_kept: z.object({ ip: z.number(), device_id: z.number() }),
  note: z.string(),
  audit_seq: auditSeqSchema,
});

interface PersonRow {
  message_id: string;
  create_date: string;
  sent_at: Date;
  ingested_at: Date;
  device_type: string;
  locale: string | null;
  app_version: string;
  masked_ip: string;
  masked_device_id: string;
  partition: string;
}

interface EraseRow {
  rows_deleted: string;
  partitions: string[];
  shredded_tokens: string[];
  shredded_fields: string[];
  kept_tokens: string[];
}

const NOT_INCLUDED =
  'Quarantined messages (bodies kept encrypted with reason codes, not searchable by user_id, deleted after QUARANTINE_RETENTION_DAYS). Audit entries are listed in audit_trail only where they named one of this person\'s tokens.';

export function personRoutes(context: RouteContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    const routes = app.withTypeProvider<ZodTypeProvider>();

    routes.post('/persons/access', {
      config: {
        auditAction: 'person.access',
        rateLimit: {},
        permission: personPermission('access', (permissions) => Object.keys(permissions.person.access).length > 0, 'requests about a person'),
      },
      schema: {
        summary: 'Everything held about one person, as one JSON document (data-subject access)',
        description:
          'Every login row of the user_id in every partition, with ip and device_id revealed as the policy allows. Audited (committed) before the answer is sent.',
        tags: ['persons'],
        security: bearerSecurity,
        body: personBody,
        response: { 200: accessResponse, ...errorResponses },
      },
      handler: async (request) => {
        const grants = context.policy.permissionsFor(principalOf(request).roles).person.access;
        const { user_id: userId, purpose, ticket } = request.body;
        const { rows } = await context.pool.query<PersonRow>(
          // create_date as text: a date is a calendar day, not an instant (no time zone shift).
          `SELECT message_id, create_date::text AS create_date, sent_at, ingested_at, device_type, locale, app_version, masked_ip, masked_device_id, partition
           FROM person_logins($1)`,
          [userId],
        );
        const tokens = new Map<string, PiiField>();
        for (const row of rows) {
          tokens.set(row.masked_ip, 'ip');
          tokens.set(row.masked_device_id, 'device_id');
        }
        const found = await context.vault.lookup([...tokens].filter(([, field]) => grants[field] !== undefined).map(([token]) => token));
        const counts = { revealed: 0, masked: 0, withheld: 0, not_found: 0 };
        const fieldCounts: Record<string, number> = { rows: rows.length };
        const results = new Map<string, ValueResult>();
        for (const [token, field] of tokens) {
          const result = valueOf(token, grants[field], found.get(token));
          results.set(token, result);
          if ('error' in result) counts[result.error === 'withheld' ? 'withheld' : 'not_found'] += 1;
          else {
            counts[result.redaction === 'none' ? 'revealed' : 'masked'] += 1;
            fieldCounts[field] = (fieldCounts[field] ?? 0) + 1;
          }
        }
        // Every entry that named one of the person's tokens, before this request's own (audit_seq).
        const auditTrail = await personAuditTrail(context.pool, [...tokens.keys()]);
        const distinct = { ip: 0, device_id: 0 };
        for (const field of tokens.values()) distinct[field] += 1;
        const partitions = new Set(rows.map((row) => row.partition));
        const attempt: Attempt = {
          outcome: 'allowed',
          reason: `user_id=${userId}: rows=${rows.length} partitions=${partitions.size} revealed=${counts.revealed} masked=${counts.masked} withheld=${counts.withheld} not_found=${counts.not_found}`,
          tokens: [...results].filter(([, result]) => !('error' in result)).map(([token]) => token),
          fieldCounts,
          purpose,
          ticket,
        };
        // Fail closed: without this committed row, nothing about the person leaves the process.
        await context.auditor.record(request, attempt);
        for (const field of PII_FIELDS) {
          const redaction = grants[field];
          if (redaction !== undefined && (fieldCounts[field] ?? 0) > 0) {
            context.metrics.revealedValues.inc({ field, redaction: redaction === 'plain' ? 'none' : 'masked' }, fieldCounts[field]);
          }
        }
        return {
          user_id: userId,
          generated_at: new Date().toISOString(),
          counts: { rows: rows.length, partitions: partitions.size, distinct_values: distinct, ...counts },
          logins: rows.map((row) => ({
            message_id: row.message_id,
            create_date: row.create_date,
            sent_at: row.sent_at.toISOString(),
            ingested_at: row.ingested_at.toISOString(),
            device_type: row.device_type,
            locale: row.locale,
            app_version: row.app_version,
            ip: results.get(row.masked_ip) ?? { token: row.masked_ip, error: 'not_found' as const },
            device_id: results.get(row.masked_device_id) ?? { token: row.masked_device_id, error: 'not_found' as const },
          })),
          audit_trail: auditTrail,
          not_included: NOT_INCLUDED,
          audit_seq: auditSeqOf(request),
        };
      },
    });

    routes.post('/persons/erase', {
      config: {
        auditAction: 'person.erase',
        rateLimit: {},
        permission: personPermission('erase', (permissions) => permissions.person.erase, 'erasing a person'),
      },
      schema: {
        summary: "Erase one person: their rows in every partition, and each vault value no other person's row uses",
        description:
          "Deletes every user_logins row of the user_id and crypto-shreds the vault values only those rows referenced. Values other people's rows still reference (a shared office IP) are kept and counted. Idempotent. Committed together with its audit row.",
        tags: ['persons'],
        security: bearerSecurity,
        body: personBody,
        response: { 200: eraseResponse, ...errorResponses },
      },
      handler: async (request) => {
        const { user_id: userId, purpose, ticket } = request.body;
        return eraseWithin(context, request, userId, purpose, ticket);
      },
    });
  };
}

function valueOf(token: string, redaction: Redaction | undefined, entry: VaultLookup | undefined): ValueResult {
  if (redaction === undefined) return { token, error: 'withheld' };
  if (entry === undefined) return { token, error: 'not_found' };
  if ('error' in entry) return { token, error: entry.error };
  return redaction === 'plain' ? { token, value: entry.value, redaction: 'none' } : { token, value: maskValue(entry.field, entry.value), redaction: 'masked' };
}

async function eraseWithin(context: RouteContext, request: FastifyRequest, userId: string, purpose: string, ticket: string): Promise<z.infer<typeof eraseResponse>> {
  // Nothing is erased without its audit row: they commit together or not at all.
  const { deleted, partitions, shredded, kept } = await context.auditor.commitWithRow(context.pool, request, async (client) => {
    const { rows } = await client.query<EraseRow>('SELECT * FROM person_erase($1)', [userId]);
    const row = rows[0];
    const shredded = { ip: 0, device_id: 0 };
    (row?.shredded_fields ?? []).forEach((field) => {
      if (field === 'ip' || field === 'device_id') shredded[field] += 1;
    });
    const kept = { ip: 0, device_id: 0 };
    for (const token of row?.kept_tokens ?? []) {
      const field = parseToken(token)?.field;
      if (field !== undefined) kept[field] += 1;
    }
    const deleted = Number(row?.rows_deleted ?? 0);
    const partitions = row?.partitions ?? [];
    const attempt: Attempt = {
      outcome: 'allowed',
      reason:
        `user_id=${userId}: deleted ${deleted} rows in ${partitions.length} partitions; shredded ip=${shredded.ip} device_id=${shredded.device_id}; ` +
        `kept ip=${kept.ip} device_id=${kept.device_id} (still referenced by other people's rows)`,
      tokens: row?.shredded_tokens ?? [],
      fieldCounts: { rows: deleted, ip: shredded.ip, device_id: shredded.device_id, kept: kept.ip + kept.device_id },
      purpose,
      ticket,
    };
    return { attempt, value: { deleted, partitions, shredded, kept } };
  });
  const keptTotal = kept.ip + kept.device_id;
  return {
    user_id: userId,
    audit_seq: auditSeqOf(request),
    rows_deleted: deleted,
    partitions,
    values_shredded: shredded,
    values_kept: kept,
    note:
      deleted === 0
        ? 'Nothing held about this user_id (already erased, or never seen): nothing changed.'
        : keptTotal === 0
          ? 'Every row of this person is deleted and each of their ip/device_id values is shredded.'
          : `Every row of this person is deleted. ${keptTotal} of their values are kept because other people's rows still reference them (for example a shared office IP); they are shredded when those rows are erased or expire.`,
  };
}
