import { TokenvaultError } from '../errors.js';
import type { AuditRowJson } from './audit-row.js';
import { canonicalize, chainHashOf, rowJson, type AuditContent } from './chain.js';
import { leafHash } from './merkle/hash.js';

type EntryFields = Omit<AuditContent, 'seq' | 'occurredAt' | 'prevHash'>;

/**
 * One attempt, before it gets its place in the chain: a row's content (lib/audit/audit-row.ts)
 * without seq, occurred_at and prev_hash, which chaining assigns; arrays and field_counts
 * read-only. Never holds a revealed value.
 */
export type AuditEntry = {
  [K in keyof EntryFields]: EntryFields[K] extends (infer Item)[] ? readonly Item[] : EntryFields[K] extends object ? Readonly<EntryFields[K]> : EntryFields[K];
};

/** The audit row could not be committed: the request must fail closed (503) and reveal nothing. */
export class AuditUnavailableError extends TokenvaultError {
  constructor(options: { cause?: unknown } = {}) {
    super('audit_unavailable', 'the audit log cannot be written', { ...options, transient: true });
  }
}

/** The last row of the chain: what the next row links to. */
export interface ChainHead {
  seq: number;
  hash: Buffer;
}

/** A row as the INSERT reads it (jsonb_to_recordset): its JSON form, column names, bytea as hex. */
export type LinkedRecord = AuditRowJson;

/**
 * Chains the entries after (afterSeq, afterHash), all stamped `occurredAt`: the records to
 * insert, the new head, and each row's Merkle leaf hash (RFC 9162: SHA-256(0x00 || canonical
 * bytes), the same bytes the chain hash covers, serialised once for both).
 */
export function linkEntries(
  entries: readonly AuditEntry[],
  afterSeq: number,
  afterHash: Buffer | null,
  occurredAt: string,
): { rows: LinkedRecord[]; last: ChainHead | undefined; leaves: Buffer[] } {
  let seq = afterSeq;
  let prevHash = afterHash;
  const leaves: Buffer[] = [];
  const rows = entries.map((entry) => {
    seq += 1;
    const content: AuditContent = { ...storable(entry), seq, occurredAt, prevHash };
    const canonical = Buffer.from(canonicalize(content), 'utf8');
    const hash = chainHashOf(prevHash, canonical);
    leaves.push(leafHash(canonical));
    prevHash = hash;
    return rowJson({ ...content, hash });
  });
  return { rows, last: prevHash === null ? undefined : { seq, hash: prevHash }, leaves };
}

/**
 * What PostgreSQL will store, so the hash is computed over the stored value: text cannot
 * hold NUL or lone surrogates, and columns have length limits. (A last line of defence: the
 * reveal-api refuses such input before it gets here; a field_counts key is not rewritten.)
 */
export function storable(entry: AuditEntry): AuditEntry & Omit<AuditContent, 'seq' | 'occurredAt' | 'prevHash'> {
  return {
    action: text(entry.action, 32) ?? '',
    actor: text(entry.actor, 256),
    roles: entry.roles.map((role) => text(role, 256) ?? ''),
    clientAddress: text(entry.clientAddress, 64),
    requestId: text(entry.requestId, 128),
    purpose: text(entry.purpose, 2000),
    ticket: text(entry.ticket, 256),
    tokens: entry.tokens.map((token) => text(token, 256) ?? ''),
    fieldCounts: { ...entry.fieldCounts },
    outcome: text(entry.outcome, 32) ?? '',
    reason: text(entry.reason, 2000),
  };
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function text(value: string | null, maxLength: number): string | null {
  if (value === null) return null;
  return value.slice(0, maxLength).replace(LONE_SURROGATE, '\uFFFD').replaceAll('\u0000', '\uFFFD');
}
