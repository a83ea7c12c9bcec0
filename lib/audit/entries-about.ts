import type pg from 'pg';
import type { AuditRow } from './chain.js';
import { OCCURRED_AT_AS_HASHED, type RawRow } from './reader.js';

type Queryable = Pick<pg.Pool, 'query'>;

/** An audit entry that named a token: who did what, when, with which outcome. */
export type EntryAbout = Pick<AuditRow, 'seq' | 'occurredAt' | 'action' | 'actor' | 'outcome'>;

/**
 * The audit entries that named any of `tokens` (reveals, collections, erasures, approval steps,
 * reads filtered by one of them…), newest first, at most `limit` (+ whether more exist). Uses
 * the hashed GIN index (audit_token_keys, migration 0003); `tokens &&` rechecks each candidate,
 * so a hash collision costs a row read, never a wrong answer.
 */
export async function entriesAboutTokens(db: Queryable, tokens: readonly string[], limit: number): Promise<{ entries: EntryAbout[]; more: boolean }> {
  if (tokens.length === 0) return { entries: [], more: false };
  const { rows } = await db.query<Pick<RawRow, 'seq' | 'occurred_at' | 'action' | 'actor' | 'outcome'>>(
    `SELECT seq, ${OCCURRED_AT_AS_HASHED}, action, actor, outcome
     FROM audit_log
     WHERE audit_token_keys(tokens) && audit_token_keys($1::text[]) AND tokens && $1::text[]
     ORDER BY seq DESC LIMIT $2`,
    [tokens, limit + 1],
  );
  const entries = rows.slice(0, limit).map((row) => ({ seq: Number(row.seq), occurredAt: row.occurred_at, action: row.action, actor: row.actor, outcome: row.outcome }));
  return { entries, more: rows.length > limit };
}
