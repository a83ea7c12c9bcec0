import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type pg from 'pg';
import { CheckpointedLogVerifier, type AuditVerdict, type VerifiedPoint, type VerifierOptions } from '../../../lib/audit/checkpointed-log-verifier.js';
import { readAuditRows, readStoredCheckpoints } from '../../../lib/audit/reader.js';

export interface MonitorVerdict extends AuditVerdict {
  mode: 'full' | 'incremental';
  /** Rows verified so far by this process, including earlier incremental runs. */
  verifiedRows: number;
}

/**
 * Verifies the audit log in the database against its stored checkpoints, incrementally: each
 * run starts where the previous successful one stopped (after checking that the row it stopped
 * at still has the same hash), so a call costs the rows appended since, not the whole log.
 * Concurrent callers share one run (single flight), and the run yields to the event loop
 * between pages, so health checks keep answering. `full` re-reads everything.
 */
export class AuditChainMonitor {
  private point: VerifiedPoint | undefined;
  private verifiedRows = 0;
  private running: { full: boolean; promise: Promise<MonitorVerdict> } | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly keys: Pick<VerifierOptions, 'publicKey' | 'logKeys' | 'witnessKeys' | 'origin'>,
    private readonly pageSize = 2000,
  ) {}

  async verify(options: { full?: boolean } = {}): Promise<MonitorVerdict> {
    const full = options.full === true;
    for (;;) {
      const current = this.running;
      if (current === undefined) break;
      // A full request does not settle for an incremental run already in flight.
      if (current.full || !full) return current.promise;
      await current.promise.catch(() => undefined);
    }
    const promise = this.run(full).finally(() => (this.running = undefined));
    this.running = { full, promise };
    return promise;
  }

  private async run(full: boolean): Promise<MonitorVerdict> {
    const from = full ? undefined : this.point;
    const verifier = new CheckpointedLogVerifier({ ...this.keys, from, mode: 'live' });
    const mode = from === undefined ? 'full' : 'incremental';
    const finish = (): MonitorVerdict => {
      const verdict = verifier.verdict();
      if (verdict.ok) {
        if (from === undefined) this.verifiedRows = 0;
        this.verifiedRows += verdict.checked;
        this.point = verifier.verifiedPoint() ?? this.point;
      } else {
        // Start from scratch next time: the broken part must be looked at again.
        this.point = undefined;
      }
      return { ...verdict, mode, verifiedRows: this.verifiedRows };
    };
    if (from !== undefined) {
      const { rows } = await this.pool.query<{ hash: Buffer }>('SELECT hash FROM audit_log WHERE seq = $1', [from.seq]);
      if (rows[0] === undefined || !rows[0].hash.equals(from.hash)) {
        this.point = undefined;
        return this.run(true);
      }
    }
    for await (const record of readStoredCheckpoints(this.pool, from?.checkpoint?.index ?? 0)) verifier.addCheckpoint(record);
    // A note checkpoint over rows verified before needs their tree root again: only a full run has it.
    if (from !== undefined && verifier.needsFullRun()) return this.run(true);
    const earlier = verifier.earlierSeqs();
    if (earlier.length > 0) {
      const { rows } = await this.pool.query<{ seq: string; hash: Buffer }>('SELECT seq, hash FROM audit_log WHERE seq = ANY($1::bigint[])', [earlier]);
      verifier.checkEarlier(new Map(rows.map((row) => [Number(row.seq), row.hash.toString('hex')])));
    }
    for await (const page of readAuditRows(this.pool, { afterSeq: from?.seq ?? 0, pageSize: this.pageSize })) {
      for (const row of page) verifier.pushRow(row);
      await yieldToEventLoop();
    }
    return finish();
  }
}
