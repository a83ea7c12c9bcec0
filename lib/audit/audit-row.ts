import { z } from 'zod';

/**
 * The one audit-row schema. An audit_log row as JSON: the columns of db/schema.ts `auditLog`
 * (snake_case, in table order), bytea as lower-case hex. It is the row of an export
 * (`{"type":"row",…}`), of GET /audit, of an entry receipt, of the INSERT's
 * jsonb_to_recordset and of the console's table (docs/audit-format.md). Everything else
 * derives from it: the in-memory row (`AuditRow`, lib/audit/chain.ts: camelCase, bytea as
 * Buffer), the entry before it is chained (lib/audit/entry.ts), the column lists of the SQL
 * (lib/audit/reader.ts, lib/audit/sql.ts). test/lib/audit/audit-row.test.ts checks its keys and
 * nullability against the drizzle table, which stays the table's definition.
 *
 * This file uses no Node types: the console imports its types (type-only, nothing bundled)
 * under a browser tsconfig. It does not define the canonical form (chain.ts `canonicalize`).
 */

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const nullableText = z.string().nullable();

export const auditRowJsonSchema = z.object({
  seq: z.number().int().min(1),
  /** ISO-8601 UTC with milliseconds (`2024-05-01T12:00:00.123Z`), exactly as hashed. */
  occurred_at: z.string(),
  action: z.string(),
  actor: nullableText,
  roles: z.array(z.string()),
  client_address: nullableText,
  request_id: nullableText,
  purpose: nullableText,
  ticket: nullableText,
  tokens: z.array(z.string()),
  field_counts: z.record(z.string(), z.number()),
  outcome: z.string(),
  reason: nullableText,
  prev_hash: hex64.nullable(),
  hash: hex64,
});

export type AuditRowJson = z.infer<typeof auditRowJsonSchema>;

/** A column of audit_log. */
export type AuditColumn = keyof AuditRowJson;

/** Every column of audit_log, in table order. */
export const AUDIT_COLUMNS = Object.keys(auditRowJsonSchema.shape) as AuditColumn[];
