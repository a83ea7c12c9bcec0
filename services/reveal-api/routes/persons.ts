import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PiiField } from '../../../lib/crypto/normalize.js';
import { parseToken } from '../../../lib/crypto/tokens.js';
import { UNAUTHENTICATED_NOTE, type RowAuthentication, type RowAuthenticationFailure, type StoredLoginRow } from '../../../lib/keys/login-row-keys.js';
import { auditSeqOf, type Attempt } from '../audit/auditor.js';
import type { PermissionRule } from '../http/authorize.js';
import type { Resolution } from '../reveal/resolve.js';
import { triage } from '../reveal/triage.js';
import { principalOf, type RouteContext } from './context.js';
import { auditSeqSchema, bearerSecurity, errorResponses, purposeSchema, ticketSchema } from './schemas.js';
import { auditTrailSchema, personAuditTrail } from './person-audit-trail.js';

/**
 * Requests about one person (data-subject access and erasure). They arrive with a user_id,
 * not with tokens. The reveal_api role cannot read user_logins: it calls owner functions
 * (migrations 0007, 0010) that act on one user_id at a time. Purpose and ticket are required.
 *
 * Each row's tag is checked first (lib/keys/login-row-keys.ts): a row the database owner edited
 * (a re-pointed masked_ip, a login moved to another person or day) fails, and is neither served
 * nor erased: it is listed in `failed_authentication`, logged at error and counted
 * (tokenvault_person_rows_total{authentication="failed"}, alert TokenvaultLoginRowTampered).
 * Rows ingested before row authentication (no tag) are served and erased, marked as such.
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

const failedRow = z.object({
  message_id: z.string(),
  create_date: z.string(),
  partition: z.string(),
  reason: z.enum(['tag_mismatch', 'unknown_key_version', 'incomplete_tag']),
});

const login = z.object({
  message_id: z.string(),
  authentication: z.enum(['verified', 'unauthenticated']).describe('verified: the row is as the ingestor wrote it; unauthenticated: written before rows carried a tag'),
  authentication_note: z.string().optional(),
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
    rows_verified: z.number(),
    rows_unauthenticated: z.number(),
    rows_failed_authentication: z.number(),
  }),
  logins: z.array(login),
  failed_authentication: z.array(failedRow).describe('Rows of this user_id whose tag does not hold (edited in the database): not served'),
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
  rows_unauthenticated: z.number(),
  rows_failed_authentication: z.number(),
  failed_authentication: z.array(failedRow).describe('Rows of this user_id whose tag does not hold: not deleted, their values not shredded'),
  note: z.string(),
  audit_seq: auditSeqSchema,
});

interface PersonRow extends StoredLoginRow {
  sent_at: Date;
  ingested_at: Date;
  partition: string;
}

/** Everything person_logins and person_erase_begin return (migration 0010), sent_at_ms as exact text. */
const PERSON_COLUMNS =
  'message_id, user_id, create_date, sent_at, sent_at_ms::text AS sent_at_ms, ingested_at, device_type, locale, app_version, masked_ip, masked_device_id, row_mac, row_mac_key_version, partition';

type FailedRow = z.infer<typeof failedRow>;

/** Rows split by their tag check: served (verified or from before tags), and failed (reported only). */
interface CheckedRows {
  served: { row: PersonRow; authentication: RowAuthentication & { status: 'verified' | 'unauthenticated' } }[];
  failed: FailedRow[];
}

function splitChecked(rows: readonly PersonRow[], checks: readonly RowAuthentication[]): CheckedRows {
  const checked: CheckedRows = { served: [], failed: [] };
  rows.forEach((row, index) => {
    const authentication = checks[index] ?? { status: 'failed', reason: 'tag_mismatch' as RowAuthenticationFailure };
    if (authentication.status === 'failed') {
      checked.failed.push({ message_id: row.message_id, create_date: row.create_date, partition: row.partition, reason: authentication.reason });
    } else {
      checked.served.push({ row, authentication });
    }
  });
  return checked;
}

/** Counts rows by authentication; a failed row is also an error in the log: someone edited it. */
function reportChecked(context: RouteContext, request: FastifyRequest, action: 'person.access' | 'person.erase', checked: CheckedRows): void {
  const unauthenticated = checked.served.filter((entry) => entry.authentication.status === 'unauthenticated').length;
  context.metrics.personRows.inc({ action, authentication: 'verified' }, checked.served.length - unauthenticated);
  context.metrics.personRows.inc({ action, authentication: 'unauthenticated' }, unauthenticated);
  context.metrics.personRows.inc({ action, authentication: 'failed' }, checked.failed.length);
  if (checked.failed.length > 0) {
    request.log.error(
      {
        action,
        rows: checked.failed.length,
        partitions: [...new Set(checked.failed.map((row) => row.partition))],
        reasons: [...new Set(checked.failed.map((row) => row.reason))],
      },
      'user_logins rows failed authentication (edited in the database): not served, not erased',
    );
  }
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
          'Every login row of the user_id in every partition, with ip and device_id revealed as the policy allows. Each row is checked against its tag first: rows edited in the database are not served (listed in failed_authentication), rows ingested before row authentication are marked unauthenticated. Audited (committed) before the answer is sent.',
        tags: ['persons'],
        security: bearerSecurity,
        body: personBody,
        response: { 200: accessResponse, ...errorResponses },
      },
      handler: async (request) => {
        const grants = context.policy.permissionsFor(principalOf(request).roles).person.access;
        const { user_id: userId, purpose, ticket } = request.body;
        const { rows: read } = await context.pool.query<PersonRow>(`SELECT ${PERSON_COLUMNS} FROM person_logins($1)`, [userId]);
        const checked = splitChecked(read, await context.loginRows.checkAll(read));
        reportChecked(context, request, 'person.access', checked);
        const rows = checked.served.map((entry) => entry.row);
        const unauthenticated = checked.served.filter((entry) => entry.authentication.status === 'unauthenticated').length;
        const tokens = new Map<string, PiiField>();
        for (const row of rows) {
          tokens.set(row.masked_ip, 'ip');
          tokens.set(row.masked_device_id, 'device_id');
        }
        // The same reveal as POST /reveal, on tokens whose field the row's column names; not charged to budgets.
        const resolved = await context.reveals.resolve(triage([...tokens].map(([token, field]) => ({ token, field })), grants));
        const counts = { revealed: 0, masked: 0, withheld: 0, not_found: 0 };
        const fieldCounts: Record<string, number> = { rows: rows.length };
        const results = new Map<string, ValueResult>();
        resolved.resolutions.forEach((resolution, index) => {
          const field = resolved.triage.requested[index]?.field;
          const result = valueOf(resolution);
          results.set(result.token, result);
          if ('error' in result) counts[result.error === 'withheld' ? 'withheld' : 'not_found'] += 1;
          else {
            counts[result.redaction === 'none' ? 'revealed' : 'masked'] += 1;
            if (field !== undefined) fieldCounts[field] = (fieldCounts[field] ?? 0) + 1;
          }
        });
        // Every entry that named one of the person's tokens, before this request's own (audit_seq).
        const auditTrail = await personAuditTrail(context.pool, [...tokens.keys()]);
        const distinct = { ip: 0, device_id: 0 };
        for (const field of tokens.values()) distinct[field] += 1;
        const partitions = new Set(rows.map((row) => row.partition));
        const attempt: Attempt = {
          outcome: 'allowed',
          reason:
            `user_id=${userId}: rows=${rows.length} partitions=${partitions.size} revealed=${counts.revealed} masked=${counts.masked} withheld=${counts.withheld} not_found=${counts.not_found}` +
            ` unauthenticated=${unauthenticated} failed_authentication=${checked.failed.length}`,
          tokens: [...results].filter(([, result]) => !('error' in result)).map(([token]) => token),
          fieldCounts,
          purpose,
          ticket,
        };
        // Fail closed: without this committed row, nothing about the person leaves the process.
        await context.reveals.reveal(request, { grants, revealed: counts.revealed + counts.masked, attempt });
        return {
          user_id: userId,
          generated_at: new Date().toISOString(),
          counts: {
            rows: rows.length,
            partitions: partitions.size,
            distinct_values: distinct,
            ...counts,
            rows_verified: rows.length - unauthenticated,
            rows_unauthenticated: unauthenticated,
            rows_failed_authentication: checked.failed.length,
          },
          logins: checked.served.map(({ row, authentication }) => ({
            message_id: row.message_id,
            ...(authentication.status === 'verified'
              ? { authentication: 'verified' as const }
              : { authentication: 'unauthenticated' as const, authentication_note: UNAUTHENTICATED_NOTE }),
            create_date: row.create_date,
            sent_at: row.sent_at.toISOString(),
            ingested_at: row.ingested_at.toISOString(),
            device_type: row.device_type,
            locale: row.locale,
            app_version: row.app_version,
            ip: results.get(row.masked_ip) ?? { token: row.masked_ip, error: 'not_found' as const },
            device_id: results.get(row.masked_device_id) ?? { token: row.masked_device_id, error: 'not_found' as const },
          })),
          failed_authentication: checked.failed,
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
          "Deletes every user_logins row of the user_id and crypto-shreds the vault values only those rows referenced. Values other people's rows still reference (a shared office IP) are kept and counted. A row whose tag does not hold (edited in the database) is neither deleted nor used to choose values to shred: it is listed for investigation. Idempotent. Committed together with its audit row.",
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

/** A person's value as answered: a field the caller's roles do not show is withheld. */
function valueOf(resolution: Resolution): ValueResult {
  if (!('error' in resolution)) return { token: resolution.token, value: resolution.value, redaction: resolution.redaction };
  if (resolution.error === 'forbidden') return { token: resolution.token, error: 'withheld' };
  // Every token here comes from a row's column, so each is one (not_a_token cannot happen).
  return { token: resolution.token, error: resolution.error === 'not_a_token' ? 'not_found' : resolution.error };
}

async function eraseWithin(context: RouteContext, request: FastifyRequest, userId: string, purpose: string, ticket: string): Promise<z.infer<typeof eraseResponse>> {
  // Every MAC key unwrapped before the tables are locked: no KMS round trip while ingestors wait.
  await context.loginRows.loadAll();
  // Nothing is erased without its audit row: they commit together or not at all.
  const { deleted, partitions, shredded, kept, checked } = await context.auditor.commit(request, async ({ client }) => {
    // Locks the tables (nothing of the person appears or changes until commit), then the rows.
    const { rows: read } = await client.query<PersonRow>(`SELECT ${PERSON_COLUMNS} FROM person_erase_begin($1)`, [userId]);
    const checked = splitChecked(read, await context.loginRows.checkAll(read));
    // Only rows whose tag holds (or that predate tags) are deleted, and only their values are candidates for shredding.
    const erasable = checked.served.map((entry) => entry.row);
    const { rows } = await client.query<EraseRow>('SELECT * FROM person_erase($1, $2::text[], $3::date[])', [
      userId,
      erasable.map((row) => row.message_id),
      erasable.map((row) => row.create_date),
    ]);
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
    const unauthenticated = checked.served.filter((entry) => entry.authentication.status === 'unauthenticated').length;
    const attempt: Attempt = {
      outcome: 'allowed',
      reason:
        `user_id=${userId}: deleted ${deleted} rows in ${partitions.length} partitions; shredded ip=${shredded.ip} device_id=${shredded.device_id}; ` +
        `kept ip=${kept.ip} device_id=${kept.device_id} (still referenced by other people's rows); ` +
        `unauthenticated=${unauthenticated} failed_authentication=${checked.failed.length} (not deleted)`,
      tokens: row?.shredded_tokens ?? [],
      fieldCounts: { rows: deleted, ip: shredded.ip, device_id: shredded.device_id, kept: kept.ip + kept.device_id },
      purpose,
      ticket,
    };
    return { attempt, value: { deleted, partitions, shredded, kept, checked } };
  });
  reportChecked(context, request, 'person.erase', checked);
  const keptTotal = kept.ip + kept.device_id;
  const failed = checked.failed.length;
  const note =
    deleted === 0 && failed === 0
      ? 'Nothing held about this user_id (already erased, or never seen): nothing changed.'
      : keptTotal === 0
        ? `Every row of this person is deleted and each of their ip/device_id values is shredded.`
        : `Every row of this person is deleted. ${keptTotal} of their values are kept because other people's rows still reference them (for example a shared office IP); they are shredded when those rows are erased or expire.`;
  return {
    user_id: userId,
    audit_seq: auditSeqOf(request),
    rows_deleted: deleted,
    partitions,
    values_shredded: shredded,
    values_kept: kept,
    rows_unauthenticated: checked.served.filter((entry) => entry.authentication.status === 'unauthenticated').length,
    rows_failed_authentication: failed,
    failed_authentication: checked.failed,
    note:
      failed === 0
        ? note
        : `${failed} row(s) of this user_id failed authentication (edited in the database since the ingestor wrote them): they were not deleted and none of their values was shredded. ` +
          `Investigate them (failed_authentication), restore or remove them, then erase again. Of the other rows: ${deleted} deleted${keptTotal === 0 ? '' : `, ${keptTotal} values kept because other people's rows still reference them`}.`,
  };
}
