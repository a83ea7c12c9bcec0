import type pg from 'pg';
import { withTransaction } from '../../db/transaction.js';
import { readUsageBook, type Charge, type ChargeDecision } from '../budget/ledger.js';
import { linkEntries, type AuditEntry, type ChainHead } from './entry.js';
import { DEFAULT_LOCK_TIMEOUT_MS, INSERT_ROWS, lockChain, READ_HEAD } from './sql.js';

export interface InsertAuditOptions {
  /** How long to wait for the chain lock before failing (default 5 s). */
  lockTimeoutMs?: number;
  now?: () => number;
}

/**
 * The one way to append audit rows outside the request path's group commit. Given a client in
 * an open transaction, the rows join it: they commit or roll back with the caller's change
 * (an erase, a retention drop, an approval step), so no change exists without its row. Given
 * a pool, the rows commit in a transaction of their own. Either way the chain lock is taken
 * first, so every writer of every process links to the same head. Returns the rows' seqs.
 */
export async function insertAudit(db: pg.Pool | pg.PoolClient, entries: AuditEntry | readonly AuditEntry[], options: InsertAuditOptions = {}): Promise<number[]> {
  const list = isEntryList(entries) ? entries : [entries];
  if (isPool(db)) return withTransaction(db, (client) => insertAudit(client, list, options));
  await db.query(lockChain(options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS));
  return (await insertAfterHead(db, list, new Date(options.now?.() ?? Date.now()).toISOString())).seqs;
}

/** With the chain lock held by the caller's transaction: reads the head, links the entries after it and inserts them. */
export async function insertAfterHead(client: pg.PoolClient, entries: readonly AuditEntry[], occurredAt: string): Promise<{ seqs: number[]; last: ChainHead | undefined }> {
  const head = await client.query<{ seq: string; hash: Buffer }>({ name: 'audit-head', text: READ_HEAD });
  const current = head.rows[0];
  const { rows, last } = linkEntries(entries, current === undefined ? 0 : Number(current.seq), current?.hash ?? null, occurredAt);
  await client.query({ name: 'audit-insert', text: INSERT_ROWS, values: [JSON.stringify(rows)] });
  return { seqs: rows.map((row) => row.seq), last };
}

/**
 * Decides and records a budget charge inside the caller's open transaction, under the chain
 * lock (every charge is written in the transaction of the audit row that records it: the
 * caller appends that row with insertAudit before committing).
 */
export async function chargeBudget(client: pg.PoolClient, charge: Charge, options: Pick<InsertAuditOptions, 'lockTimeoutMs'> = {}): Promise<ChargeDecision> {
  await client.query(lockChain(options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS));
  const book = await readUsageBook(client, [charge.actor]);
  const decision = book.charge(charge);
  const upsert = book.upsert((value) => client.escapeLiteral(value));
  if (upsert !== undefined) await client.query(upsert);
  return decision;
}

function isEntryList(entries: AuditEntry | readonly AuditEntry[]): entries is readonly AuditEntry[] {
  return Array.isArray(entries);
}

function isPool(db: pg.Pool | pg.PoolClient): db is pg.Pool {
  return 'totalCount' in db;
}
