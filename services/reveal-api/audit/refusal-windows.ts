import type pg from 'pg';
import { withTransaction } from '../../../db/transaction.js';
import type { AuditEntry } from '../../../lib/audit/entry.js';
import { insertAudit, type InsertAuditOptions } from '../../../lib/audit/insert.js';

/** One window's count as the replica holds it, for storing (migration 0008, refusal_windows). */
export interface WindowCount {
  id: string;
  /** The sampling key: [source, action, code...] as JSON. */
  source: string;
  code: string;
  startedAt: number;
  endsAt: number;
  /** Refusals after the first, not yet in the audit chain. */
  refusals: number;
  bytes: number;
  /** The summary row's entry; its reason, if any, is a note added to the summary's. */
  summary: AuditEntry;
}

/** A window whose summary is to be written: `refusals` in total, of which `inRow` are in its stored row (0: no row). */
export interface ClosingWindow extends WindowCount {
  inRow: number;
  bytesInRow: number;
  closedAt: number;
}

export interface RefusalWindowsOptions extends InsertAuditOptions {
  /** A row not updated for this long belongs to a replica that stopped: its summary is written by whoever finds it. */
  graceMs?: number;
}

export const DEFAULT_GRACE_MS = 10_000;

interface StoredRow {
  id: string;
  code: string;
  window_start: Date;
  updated_at: Date;
  refusals: number;
  bytes: string;
  summary: AuditEntry;
}

/**
 * The summary row of a window: the first refusal's actor, roles, address and request id, the
 * count of the refusals after it, their time span, and (for anonymous sources) the bytes sent.
 */
export function summaryEntry(
  template: AuditEntry,
  window: { code: string; refusals: number; bytes: number; from: number; to: number; recovered?: boolean },
): AuditEntry {
  const bytes = window.bytes > 0 ? ` bytes=${window.bytes}` : '';
  const recovered = window.recovered === true ? ' recovered' : '';
  const note = [
    window.recovered === true
      ? 'summary: refusals after the first in this window, as last stored by the replica that answered them before it stopped'
      : 'summary: refusals after the first in this window',
    ...(template.reason === null ? [] : [template.reason]),
  ].join('; ');
  return {
    ...template,
    tokens: [],
    fieldCounts: {},
    purpose: null,
    ticket: null,
    reason: `${window.code} repeated=${window.refusals} from=${new Date(window.from).toISOString()} to=${new Date(window.to).toISOString()}${bytes}${recovered} (${note})`,
  };
}

/**
 * Where the counts of open refusal windows survive the process: each replica stores them about
 * once a second (save), writes a window's summary audit row and deletes its row in one
 * transaction (close), and writes the summaries of rows nobody has updated for `graceMs`
 * (recover: a replica that stopped without closing them, e.g. kill -9), exactly once.
 */
export class RefusalWindows {
  private readonly graceMs: number;

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: RefusalWindowsOptions = {},
  ) {
    this.graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  }

  /**
   * Inserts the rows of `fresh` windows and updates the counts (and liveness) of `stored` ones,
   * in one statement. Resolves with the ids of stored windows whose row is gone: another
   * replica recovered it, with the count it held.
   */
  async save(fresh: readonly WindowCount[], stored: readonly WindowCount[]): Promise<Set<string>> {
    if (fresh.length === 0 && stored.length === 0) return new Set();
    const rows = [...fresh.map((window) => record(window, true)), ...stored.map((window) => record(window, false))];
    const { rows: found } = await this.pool.query<{ id: string }>(
      `WITH v AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(id uuid, source text, code text, window_start timestamptz, window_end timestamptz,
                                                          refusals integer, bytes bigint, summary jsonb, fresh boolean)
       ), inserted AS (
         INSERT INTO refusal_windows (id, source, code, window_start, window_end, refusals, bytes, summary)
         SELECT id, source, code, window_start, window_end, refusals, bytes, summary FROM v WHERE fresh
         ON CONFLICT (id) DO NOTHING
         RETURNING id
       ), updated AS (
         UPDATE refusal_windows r SET refusals = v.refusals, bytes = v.bytes, updated_at = now()
         FROM v WHERE NOT v.fresh AND r.id = v.id
         RETURNING r.id
       )
       SELECT id FROM updated`,
      [JSON.stringify(rows)],
    );
    const present = new Set(found.map((row) => row.id));
    return new Set(stored.filter((window) => !present.has(window.id)).map((window) => window.id));
  }

  /**
   * Writes the summary rows of closed windows and deletes their stored rows, in one
   * transaction. A window whose row was recovered meanwhile by another replica contributes only
   * what that recovery did not count. Windows with nothing left to report write no row.
   */
  async close(windows: readonly ClosingWindow[]): Promise<number> {
    if (windows.length === 0) return 0;
    return withTransaction(this.pool, async (client) => {
      const withRow = windows.filter((window) => window.inRow > 0).map((window) => window.id);
      const { rows } = withRow.length === 0 ? { rows: [] } : await client.query<{ id: string }>('DELETE FROM refusal_windows WHERE id = ANY($1::uuid[]) RETURNING id', [withRow]);
      const deleted = new Set(rows.map((row) => row.id));
      const summaries = windows.flatMap((window) => {
        const recoveredElsewhere = window.inRow > 0 && !deleted.has(window.id);
        const refusals = window.refusals - (recoveredElsewhere ? window.inRow : 0);
        const bytes = Math.max(0, window.bytes - (recoveredElsewhere ? window.bytesInRow : 0));
        return refusals <= 0
          ? []
          : [summaryEntry(window.summary, { code: window.code, refusals, bytes, from: window.startedAt, to: Math.min(window.endsAt, window.closedAt) })];
      });
      if (summaries.length > 0) await insertAudit(client, summaries, this.options);
      return summaries.length;
    });
  }

  /**
   * Summaries of the windows of replicas that stopped (rows not updated for graceMs), written and
   * deleted in one transaction: two replicas recovering at once never write one twice. Returns
   * the refusals recovered.
   */
  async recover(): Promise<{ windows: number; refusals: number }> {
    const grace = `${Math.max(1, Math.trunc(this.graceMs))} milliseconds`;
    const { rows: stale } = await this.pool.query('SELECT 1 FROM refusal_windows WHERE updated_at < now() - $1::interval LIMIT 1', [grace]);
    if (stale.length === 0) return { windows: 0, refusals: 0 };
    return withTransaction(this.pool, async (client) => {
      const { rows } = await client.query<StoredRow>(
        'DELETE FROM refusal_windows WHERE updated_at < now() - $1::interval RETURNING id, code, window_start, updated_at, refusals, bytes, summary',
        [grace],
      );
      const summaries = rows
        .filter((row) => row.refusals > 0)
        .map((row) =>
          summaryEntry(row.summary, {
            code: row.code,
            refusals: row.refusals,
            bytes: Number(row.bytes),
            from: row.window_start.getTime(),
            to: row.updated_at.getTime(),
            recovered: true,
          }),
        );
      if (summaries.length > 0) await insertAudit(client, summaries, this.options);
      return { windows: summaries.length, refusals: rows.reduce((sum, row) => sum + row.refusals, 0) };
    });
  }
}

function record(window: WindowCount, fresh: boolean) {
  return {
    id: window.id,
    source: window.source,
    code: window.code,
    window_start: new Date(window.startedAt).toISOString(),
    window_end: new Date(window.endsAt).toISOString(),
    refusals: window.refusals,
    bytes: window.bytes,
    summary: window.summary,
    fresh,
  };
}
