import type pg from 'pg';
import { ChainVerifier, type AuditRow, type ChainVerdict } from './chain.js';

type Queryable = Pick<pg.Pool, 'query'>;

/** Columns as stored, with occurred_at rendered exactly as it was hashed. */
export const ROW_COLUMNS = `seq, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS occurred_at, action, actor,
  roles, client_address, request_id, purpose, ticket, tokens, field_counts, outcome, reason, prev_hash, hash`;

export interface RawRow {
  seq: string;
  occurred_at: string;
  action: string;
  actor: string | null;
  roles: string[];
  client_address: string | null;
  request_id: string | null;
  purpose: string | null;
  ticket: string | null;
  tokens: string[];
  field_counts: Record<string, number>;
  outcome: string;
  reason: string | null;
  prev_hash: Buffer | null;
  hash: Buffer;
}

export function toRow(raw: RawRow): AuditRow {
  return {
    seq: Number(raw.seq),
    occurredAt: raw.occurred_at,
    action: raw.action,
    actor: raw.actor,
    roles: raw.roles,
    clientAddress: raw.client_address,
    requestId: raw.request_id,
    purpose: raw.purpose,
    ticket: raw.ticket,
    tokens: raw.tokens,
    fieldCounts: raw.field_counts,
    outcome: raw.outcome,
    reason: raw.reason,
    prevHash: raw.prev_hash,
    hash: raw.hash,
  };
}

/** Checks the whole chain, oldest first, a page at a time (constant memory). */
export async function verifyAuditChain(db: Queryable, pageSize = 2000): Promise<ChainVerdict> {
  const verifier = new ChainVerifier();
  let after = 0;
  for (;;) {
    const page = await db.query<RawRow>(`SELECT ${ROW_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, [after, pageSize]);
    for (const raw of page.rows) {
      if (!verifier.push(toRow(raw))) return verifier.verdict();
    }
    const last = page.rows.at(-1);
    if (last === undefined || page.rows.length < pageSize) return verifier.verdict();
    after = Number(last.seq);
  }
}

export interface AuditQuery {
  actor?: string | undefined;
  token?: string | undefined;
  outcome?: string | undefined;
  action?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  /** Only rows with a smaller seq (the previous page's last seq). */
  beforeSeq?: number | undefined;
  limit: number;
}

export interface AuditPage {
  entries: AuditRow[];
  /** seq of the last entry when more may follow. */
  nextBeforeSeq: number | undefined;
}

/** Newest first, keyset-paginated on seq. */
export async function queryAuditLog(db: Queryable, query: AuditQuery): Promise<AuditPage> {
  const conditions: string[] = [];
  const values: unknown[] = [];
  const add = (sql: (placeholder: string) => string, value: unknown) => {
    values.push(value);
    conditions.push(sql(`$${values.length}`));
  };
  if (query.actor !== undefined) add((p) => `actor = ${p}`, query.actor);
  // The GIN index holds hashes of the tokens (audit_token_keys); `tokens @>` rechecks each candidate.
  if (query.token !== undefined) {
    add((p) => `audit_token_keys(tokens) @> audit_token_keys(ARRAY[${p}]::text[]) AND tokens @> ARRAY[${p}]::text[]`, query.token);
  }
  if (query.outcome !== undefined) add((p) => `outcome = ${p}`, query.outcome);
  if (query.action !== undefined) add((p) => `action = ${p}`, query.action);
  if (query.from !== undefined) add((p) => `occurred_at >= ${p}::timestamptz`, query.from);
  if (query.to !== undefined) add((p) => `occurred_at < ${p}::timestamptz`, query.to);
  if (query.beforeSeq !== undefined) add((p) => `seq < ${p}`, query.beforeSeq);
  values.push(query.limit + 1);
  const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
  const result = await db.query<RawRow>(`SELECT ${ROW_COLUMNS} FROM audit_log ${where} ORDER BY seq DESC LIMIT $${values.length}`, values);
  const entries = result.rows.slice(0, query.limit).map(toRow);
  const more = result.rows.length > query.limit;
  return { entries, nextBeforeSeq: more ? entries.at(-1)?.seq : undefined };
}
