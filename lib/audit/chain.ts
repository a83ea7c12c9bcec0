import { createHash } from 'node:crypto';
import type { AuditColumn, AuditRowJson } from './audit-row.js';

type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;

/**
 * An audit_log row in memory, derived from the row schema (lib/audit/audit-row.ts): its columns
 * in camelCase, bytea as Buffer. `occurredAt` is ISO-8601 UTC with milliseconds
 * (`2024-05-01T12:00:00.123Z`): timestamptz round-trips it exactly.
 */
export type AuditRow = {
  [C in AuditColumn as CamelCase<C>]: C extends 'prev_hash' ? Buffer | null : C extends 'hash' ? Buffer : AuditRowJson[C];
};

/** Every column of an audit_log row except `hash`, exactly as stored. */
export type AuditContent = Omit<AuditRow, 'hash'>;

/** The row's JSON form (column names, bytea as hex) without its hash. */
export function contentJson(row: AuditContent): Omit<AuditRowJson, 'hash'> {
  return {
    seq: row.seq,
    occurred_at: row.occurredAt,
    action: row.action,
    actor: row.actor,
    roles: row.roles,
    client_address: row.clientAddress,
    request_id: row.requestId,
    purpose: row.purpose,
    ticket: row.ticket,
    tokens: row.tokens,
    field_counts: row.fieldCounts,
    outcome: row.outcome,
    reason: row.reason,
    prev_hash: row.prevHash === null ? null : row.prevHash.toString('hex'),
  };
}

/** The row's JSON form (GET /audit, receipts, the INSERT's records). */
export function rowJson(row: AuditRow): AuditRowJson {
  return { ...contentJson(row), hash: row.hash.toString('hex') };
}

/** The row a JSON form holds (an export line, a receipt's entry). */
export function rowFromJson(json: AuditRowJson): AuditRow {
  return {
    seq: json.seq,
    occurredAt: json.occurred_at,
    action: json.action,
    actor: json.actor,
    roles: json.roles,
    clientAddress: json.client_address,
    requestId: json.request_id,
    purpose: json.purpose,
    ticket: json.ticket,
    tokens: json.tokens,
    fieldCounts: json.field_counts,
    outcome: json.outcome,
    reason: json.reason,
    prevHash: json.prev_hash === null ? null : Buffer.from(json.prev_hash, 'hex'),
    hash: Buffer.from(json.hash, 'hex'),
  };
}

/**
 * Deterministic serialisation of a row: JSON with the column names as keys, sorted at every
 * level, bytea as lower-case hex. Anyone can recompute it from the table with SQL access only.
 */
export function canonicalize(row: AuditContent): string {
  // Keys written in sorted order by hand (same output as stableStringify of the whole row,
  // which the tests check): this runs for every request.
  return (
    `{"action":${JSON.stringify(row.action)}` +
    `,"actor":${JSON.stringify(row.actor)}` +
    `,"client_address":${JSON.stringify(row.clientAddress)}` +
    `,"field_counts":${stableStringify(row.fieldCounts)}` +
    `,"occurred_at":${JSON.stringify(row.occurredAt)}` +
    `,"outcome":${JSON.stringify(row.outcome)}` +
    `,"prev_hash":${row.prevHash === null ? 'null' : `"${row.prevHash.toString('hex')}"`}` +
    `,"purpose":${JSON.stringify(row.purpose)}` +
    `,"reason":${JSON.stringify(row.reason)}` +
    `,"request_id":${JSON.stringify(row.requestId)}` +
    `,"roles":${JSON.stringify(row.roles)}` +
    `,"seq":${JSON.stringify(row.seq)}` +
    `,"ticket":${JSON.stringify(row.ticket)}` +
    `,"tokens":${JSON.stringify(row.tokens)}}`
  );
}

/** The generic form of canonicalize: JSON with object keys sorted at every level. */
export function canonicalizeGeneric(row: AuditContent): string {
  return stableStringify(contentJson(row));
}

/** hash = SHA-256(prev_hash || canonical content); the first row has no prev_hash. */
export function chainHash(row: AuditContent): Buffer {
  return chainHashOf(row.prevHash, Buffer.from(canonicalize(row), 'utf8'));
}

/** chainHash given the row's canonical bytes (UTF-8 of canonicalize), for a caller that needs them too (the Merkle leaf). */
export function chainHashOf(prevHash: Buffer | null, canonical: Uint8Array): Buffer {
  const hash = createHash('sha256');
  if (prevHash !== null) hash.update(prevHash);
  return hash.update(canonical).digest();
}

function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${stableStringify(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
