import { TokenvaultError } from '../errors.js';
import { chainHash, type AuditContent } from './chain.js';

/** One attempt, before it gets its place in the chain. Never holds a revealed value. */
export interface AuditEntry {
  action: string;
  actor: string | null;
  roles: readonly string[];
  clientAddress: string | null;
  requestId: string | null;
  purpose: string | null;
  ticket: string | null;
  tokens: readonly string[];
  fieldCounts: Readonly<Record<string, number>>;
  outcome: string;
  reason: string | null;
}

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

/** A row as the INSERT reads it (jsonb_to_recordset): snake_case columns, bytea as hex. */
export type LinkedRecord = ReturnType<typeof toRecord>;

/** Chains the entries after (afterSeq, afterHash), all stamped `occurredAt`: the records to insert and the new head. */
export function linkEntries(
  entries: readonly AuditEntry[],
  afterSeq: number,
  afterHash: Buffer | null,
  occurredAt: string,
): { rows: LinkedRecord[]; last: ChainHead | undefined } {
  let seq = afterSeq;
  let prevHash = afterHash;
  const rows = entries.map((entry) => {
    seq += 1;
    const content: AuditContent = { ...storable(entry), seq, occurredAt, prevHash };
    const hash = chainHash(content);
    prevHash = hash;
    return toRecord(content, hash);
  });
  return { rows, last: prevHash === null ? undefined : { seq, hash: prevHash } };
}

function toRecord(content: AuditContent, hash: Buffer) {
  return {
    seq: content.seq,
    occurred_at: content.occurredAt,
    action: content.action,
    actor: content.actor,
    roles: content.roles,
    client_address: content.clientAddress,
    request_id: content.requestId,
    purpose: content.purpose,
    ticket: content.ticket,
    tokens: content.tokens,
    field_counts: content.fieldCounts,
    outcome: content.outcome,
    reason: content.reason,
    prev_hash: content.prevHash?.toString('hex') ?? null,
    hash: hash.toString('hex'),
  };
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
