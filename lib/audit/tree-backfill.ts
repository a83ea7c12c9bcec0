import type pg from 'pg';
import { withTransaction } from '../../db/transaction.js';
import { TokenvaultError } from '../errors.js';
import type { StoredNode } from './merkle/compact-range.js';
import { auditLeafHash } from './merkle/audit-leaf.js';
import { ROW_COLUMNS, toRow, type RawRow } from './reader.js';
import { DEFAULT_LOCK_TIMEOUT_MS, lockChain } from './sql.js';
import { INSERT_NODES, nodesJson } from './tree-sql.js';
import { readTreeEdge } from './tree-store.js';

/** Rows per transaction of the catch-up: each holds the chain lock (appends wait) for about this many rows' work. */
export const DEFAULT_CATCH_UP_ROWS = 2_000;

/** The log has a hole where the tree needs its next leaf (row deleted by the owner): the tree cannot grow past it. */
export class AuditTreeGapError extends TokenvaultError {
  constructor(
    readonly expectedSeq: number,
    readonly foundSeq: number,
  ) {
    super('audit_tree_gap', `the Merkle tree cannot cover audit row ${expectedSeq}: it is missing (the next row is ${foundSeq}); appends go on without nodes until it is repaired`);
  }
}

export interface TreeExtension {
  /** Tree size before and after. */
  from: number;
  size: number;
  /** False while rows without leaves remain (call again). */
  caughtUp: boolean;
  /** The tree stopped before a hole in the log: the row it needs next is missing. */
  gap?: AuditTreeGapError;
}

/**
 * With the chain lock held by the caller's transaction: appends the leaves of up to `maxRows`
 * audit rows that have none yet (rows written by code that does not write nodes: an older
 * version during a rolling upgrade, or rows that existed before migration 0011) and stores the
 * nodes they complete. Each such row is read and hashed once, in seq order, resuming from the
 * stored right edge: never re-hashing a row that has its leaf. Idempotent and resumable.
 */
export async function extendTreeFromLog(client: pg.PoolClient, maxRows = DEFAULT_CATCH_UP_ROWS): Promise<TreeExtension> {
  const tree = await readTreeEdge(client);
  const from = tree.size;
  const { rows } = await client.query<RawRow>({
    name: 'audit-tree-catch-up',
    text: `SELECT ${ROW_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`,
    values: [from, maxRows],
  });
  const nodes: StoredNode[] = [];
  let gap: AuditTreeGapError | undefined;
  for (const raw of rows) {
    const row = toRow(raw);
    // Leaf index = seq − 1: a row missing in between leaves no place for the rows after it.
    if (row.seq !== tree.size + 1) {
      gap = new AuditTreeGapError(tree.size + 1, row.seq);
      break;
    }
    nodes.push(...tree.append(auditLeafHash(row)));
  }
  if (nodes.length > 0) await client.query({ name: 'audit-tree-insert-nodes', text: INSERT_NODES, values: [nodesJson(nodes)] });
  return { from, size: tree.size, caughtUp: gap === undefined && rows.length < maxRows, ...(gap === undefined ? {} : { gap }) };
}

export interface BackfillOptions {
  /** Rows per transaction (default 2,000). */
  batchRows?: number;
  /** How long each transaction waits for the chain lock (default 5 s). */
  lockTimeoutMs?: number;
  onProgress?: (extension: TreeExtension) => void;
  /** Checked between transactions: true stops early (the next run resumes). */
  stopped?: () => boolean;
}

/**
 * Builds the tree over every audit row that has no leaf yet, one transaction of `batchRows`
 * rows at a time under the chain lock, so appends interleave. Throws AuditTreeGapError, having
 * stored the leaves before it, when a row is missing from the log. Run by `npm run db:migrate`
 * after the SQL migrations (existing logs: migration 0011) and in the background by the
 * reveal-api (AuditWriter) whenever it finds the tree behind the log. Safe to run in several
 * processes at once: the chain lock orders them, and each resumes where the stored tree ends.
 * Returns the sizes before and after.
 */
export async function backfillAuditTree(pool: pg.Pool, options: BackfillOptions = {}): Promise<TreeExtension> {
  const batchRows = options.batchRows ?? DEFAULT_CATCH_UP_ROWS;
  const lock = lockChain(options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
  let first: number | undefined;
  for (;;) {
    const step = await withTransaction(pool, async (client) => {
      await client.query(lock);
      return extendTreeFromLog(client, batchRows);
    });
    first ??= step.from;
    options.onProgress?.(step);
    // The leaves before a hole are stored (committed above); the hole itself needs a person.
    if (step.gap !== undefined) throw step.gap;
    if (step.caughtUp || options.stopped?.() === true) return { ...step, from: first };
  }
}

export interface CatchUpOptions extends Omit<BackfillOptions, 'stopped'> {
  /** After a failed catch-up, how long before the next request starts another (default 30 s). */
  retryMs?: number;
  onDone?: (extension: TreeExtension) => void;
  onError?: (error: unknown) => void;
}

/**
 * One background backfillAuditTree at a time, started on request (the writer asks when it finds
 * the tree behind the log). A failure (a gap in the log, the database away) is reported and
 * retried on a later request, at most once per retryMs.
 */
export class TreeCatchUp {
  private running: Promise<void> | undefined;
  private stopped = false;
  private failedAt = -Infinity;

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: CatchUpOptions = {},
  ) {}

  request(): void {
    if (this.running !== undefined || this.stopped) return;
    if (performance.now() - this.failedAt < (this.options.retryMs ?? 30_000)) return;
    this.running = backfillAuditTree(this.pool, { ...this.options, stopped: () => this.stopped })
      .then(
        (extension) => this.options.onDone?.(extension),
        (error: unknown) => {
          this.failedAt = performance.now();
          this.options.onError?.(error);
        },
      )
      .finally(() => (this.running = undefined));
  }

  /** Resolves once no catch-up is running. */
  async idle(): Promise<void> {
    await this.running;
  }

  /** Stops after the current transaction; no more requests start one. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }
}
