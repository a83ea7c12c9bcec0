import type pg from 'pg';
import { rollback, withClient, type Discard } from '../../db/transaction.js';
import { actorsLiteral, bookFrom, READ_NOW, readUsage, type Charge, type ChargeDecision, type UsageBook } from '../budget/ledger.js';
import { AuditUnavailableError, linkEntries, type AuditEntry, type ChainHead } from './entry.js';
import { DEFAULT_LOCK_TIMEOUT_MS, insertIfHeadIs, insertRows, lockChain, READ_HEAD } from './sql.js';
import { insertAfterHead } from './insert.js';
import { GroupCommit } from '../group-commit.js';
import { isTransient, sqlState } from '../errors.js';

/**
 * A group the database refused for what one of its entries holds (a value jsonb or text cannot
 * store, a constraint): each entry is then committed alone, so only the offender fails, as the
 * ingest sink does message by message. Not when the chain lock could not be had (55P03) or the
 * database is away (transient): alone, every entry would wait or fail the same way.
 */
function refusedForItsContent(error: unknown): boolean {
  return !isTransient(error) && sqlState(error) !== '55P03';
}

/** Beyond this many actors the cached usage is rebuilt from the batch's actors (bounded memory). */
const MAX_CACHED_ACTORS = 10_000;

function withDecision(seq: number, decision: ChargeDecision | undefined): Appended {
  return decision === undefined ? { seq } : { seq, decision };
}

export interface AuditWriterOptions {
  /** Most rows committed in one transaction. */
  maxBatch?: number;
  /** How long a write may wait for the chain lock before the request fails closed (default 5 s). */
  lockTimeoutMs?: number;
  /** Seconds each entry waited from append() to commit (the audit share of a request's latency). */
  onCommitted?: (seconds: number) => void;
  onBatch?: (size: number) => void;
  now?: () => number;
}

/** A budget charge decided in the transaction of its audit row; `refused` is the row written when it does not fit. */
export interface ChargedEntry {
  charge: Charge;
  refused: (decision: ChargeDecision) => AuditEntry;
}

export interface Appended {
  seq: number;
  decision?: ChargeDecision;
}

interface Queued {
  entry: AuditEntry;
  charged?: ChargedEntry;
  enqueuedAt: number;
}

/**
 * Appends to the hash chain with group commit (lib/group-commit.ts): entries arriving while a
 * transaction is in flight are written together in the next one (one lock, one head read, one
 * INSERT, one COMMIT for the whole group). append() resolves only once its row is committed.
 * One writer at a time: every row links to the one before it.
 */
export class AuditWriter {
  private readonly groups: GroupCommit<Queued, Appended>;
  private readonly beginAndLock: string;
  /** The last row this writer committed: the next batch links to it without reading it first. */
  private knownHead: ChainHead | undefined;
  /** Budget usage as of knownHead, for the actors this writer charged (valid only together with knownHead). */
  private usage: UsageBook | undefined;
  /** Database clock minus this process's, as last measured: windows follow the database's clock. */
  private databaseClockOffset = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: AuditWriterOptions = {},
  ) {
    this.beginAndLock = `BEGIN; ${lockChain(options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS)}`;
    this.groups = new GroupCommit({ commit: (batch) => this.commit(batch), writers: 1, maxWeight: options.maxBatch ?? 256, retryAlone: refusedForItsContent });
  }

  /** Resolves with the row's seq once it is committed; rejects with AuditUnavailableError. */
  append(entry: AuditEntry): Promise<number> {
    return this.enqueue(entry, undefined).then((appended) => appended.seq);
  }

  /**
   * Appends `entry` if its budget charge fits, or `charged.refused(decision)` if it does not:
   * the decision, the usage update and the row commit in one transaction (group-committed
   * with other entries), so every replica sees one count and no charge exists without its row.
   */
  appendCharged(entry: AuditEntry, charged: ChargedEntry): Promise<Appended> {
    return this.enqueue(entry, charged);
  }

  private enqueue(entry: AuditEntry, charged: ChargedEntry | undefined): Promise<Appended> {
    return this.groups.submit({ entry, ...(charged === undefined ? {} : { charged }), enqueuedAt: performance.now() }).catch((cause: unknown) => {
      throw new AuditUnavailableError({ cause });
    });
  }

  /** Waits for every appended entry to be committed or rejected (shutdown). */
  async flush(): Promise<void> {
    await this.groups.idle();
  }

  private async commit(batch: readonly Queued[]): Promise<Appended[]> {
    const written = batch.some((queued) => queued.charged !== undefined)
      ? await this.writeChargedBatch(batch)
      : (await this.writeBatch(batch.map((queued) => queued.entry))).map((seq): Appended => ({ seq }));
    const now = performance.now();
    this.options.onBatch?.(batch.length);
    for (const queued of batch) this.options.onCommitted?.((now - queued.enqueuedAt) / 1000);
    return written;
  }

  private writeBatch(entries: readonly AuditEntry[]): Promise<number[]> {
    return withClient(this.pool, async (client, discard) => {
      const head = this.knownHead;
      this.knownHead = undefined;
      if (head !== undefined) {
        // Rows without charges leave the usage as it was: the cached usage stays valid with the new head.
        const seqs = await this.tryWriteAfter(client, discard, head, entries);
        if (seqs !== undefined) return seqs;
      }
      this.usage = undefined;
      await client.query(this.beginAndLock);
      try {
        const { seqs, last } = await insertAfterHead(client, entries, this.occurredAt());
        await client.query('COMMIT');
        this.knownHead = last;
        return seqs;
      } catch (error) {
        await rollback(client, discard);
        throw error;
      }
    });
  }

  /**
   * Charged batches. Usually one round trip, like uncharged ones: while the chain head is the
   * one this writer committed last, nobody else has charged a budget since (every charge is
   * written with its audit row, under the chain lock), so the usage this writer holds for the
   * batch's actors is the table's: decide against it, then lock, insert linked to that head,
   * store the usage only if the insert happened, commit. Otherwise, two round trips: (lock,
   * database clock, the actors' usage, head), then (usage, rows, commit). Charges are decided
   * in queue order, so two requests of one actor in one batch cannot both spend the last values.
   */
  private writeChargedBatch(batch: readonly Queued[]): Promise<Appended[]> {
    const actors = [...new Set(batch.flatMap((queued) => (queued.charged === undefined ? [] : [queued.charged.charge.actor])))];
    const head = this.knownHead;
    const cached = this.usage;
    this.knownHead = undefined;
    this.usage = undefined;
    return withClient(this.pool, async (client, discard) => {
      if (head !== undefined && cached !== undefined && actors.every((actor) => cached.knows(actor))) {
        cached.now = Date.now() + this.databaseClockOffset;
        const written = await this.tryChargedAfter(client, discard, head, cached, batch);
        if (written !== undefined) return written;
      }
      let results: pg.QueryResult[];
      try {
        results = (await client.query(
          `${this.beginAndLock}; ${READ_NOW}; ${readUsage(actorsLiteral((value) => client.escapeLiteral(value), actors))}; ${READ_HEAD}`,
        )) as unknown as pg.QueryResult[];
        const book = bookFrom(results.at(-3), results.at(-2), actors);
        this.databaseClockOffset = book.now - Date.now();
        const current = results.at(-1)?.rows[0] as { seq: string; hash: Buffer } | undefined;
        // Nothing moved since this writer's last commit: what it knew of other actors still holds.
        if (cached !== undefined && head !== undefined && current !== undefined && Number(current.seq) === head.seq && current.hash.equals(head.hash) && cached.size < MAX_CACHED_ACTORS) {
          book.absorb(cached);
        }
        const { rows, last, decisions } = this.decideAndLink(batch, book, current === undefined ? 0 : Number(current.seq), current?.hash ?? null);
        const upsert = book.upsert((value) => client.escapeLiteral(value));
        const insert = insertRows(client.escapeLiteral(JSON.stringify(rows)));
        await client.query(`${upsert === undefined ? '' : `${upsert}; `}${insert}; COMMIT`);
        book.committed();
        this.knownHead = last;
        this.usage = book;
        return rows.map((row, index) => withDecision(row.seq, decisions[index]));
      } catch (error) {
        await rollback(client, discard);
        throw error;
      }
    });
  }

  /** The one-round-trip charged write; undefined (nothing committed) when the head moved. */
  private async tryChargedAfter(client: pg.PoolClient, discard: Discard, head: ChainHead, book: UsageBook, batch: readonly Queued[]): Promise<Appended[] | undefined> {
    const { rows, last, decisions } = this.decideAndLink(batch, book, head.seq, head.hash);
    const insert = insertIfHeadIs(client.escapeLiteral(JSON.stringify(rows)), head);
    const lastRow = rows.at(-1);
    // Reads this transaction's own insert: no row, no charge.
    const inserted =
      lastRow === undefined ? 'WHERE false' : `WHERE EXISTS (SELECT 1 FROM audit_log WHERE seq = ${lastRow.seq} AND hash = decode('${lastRow.hash}', 'hex'))`;
    const upsert = book.upsert((value) => client.escapeLiteral(value), inserted);
    let results: pg.QueryResult[];
    try {
      results = (await client.query(`${this.beginAndLock}; ${insert}; ${upsert === undefined ? '' : `${upsert}; `}COMMIT`)) as unknown as pg.QueryResult[];
    } catch (error) {
      await rollback(client, discard);
      throw error;
    }
    if (results.at(upsert === undefined ? -2 : -3)?.rowCount !== rows.length) return undefined;
    book.committed();
    this.knownHead = last;
    this.usage = book;
    return rows.map((row, index) => withDecision(row.seq, decisions[index]));
  }

  /** Decides each charge in order (a refused one is replaced by its refusal row) and links the rows after (seq, hash). */
  private decideAndLink(batch: readonly Queued[], book: UsageBook, afterSeq: number, afterHash: Buffer | null) {
    const decisions = batch.map((queued) => (queued.charged === undefined ? undefined : book.charge(queued.charged.charge)));
    const entries = batch.map((queued, index) => {
      const decision = decisions[index];
      return queued.charged !== undefined && decision !== undefined && !decision.granted ? queued.charged.refused(decision) : queued.entry;
    });
    return { ...this.link(entries, afterSeq, afterHash), decisions };
  }

  /**
   * The common case in one round trip (each round trip is held under the chain lock, so it
   * adds to every waiting request): lock, insert linked to the head this writer committed
   * last, commit. Returns undefined, having committed nothing, when someone else (another
   * instance, an erase) moved the head meanwhile.
   */
  private async tryWriteAfter(client: pg.PoolClient, discard: Discard, head: ChainHead, entries: readonly AuditEntry[]): Promise<number[] | undefined> {
    const { rows, last } = this.link(entries, head.seq, head.hash);
    const insert = insertIfHeadIs(client.escapeLiteral(JSON.stringify(rows)), head);
    let results: pg.QueryResult[];
    try {
      results = (await client.query(`${this.beginAndLock}; ${insert}; COMMIT`)) as unknown as pg.QueryResult[];
    } catch (error) {
      // An error leaves the transaction open and aborted (the COMMIT was never reached).
      await rollback(client, discard);
      throw error;
    }
    if (results.at(-2)?.rowCount !== rows.length) return undefined;
    this.knownHead = last;
    return rows.map((row) => row.seq);
  }

  /** Chains the entries after (seq, prevHash), stamped with this writer's clock. */
  private link(entries: readonly AuditEntry[], afterSeq: number, afterHash: Buffer | null) {
    return linkEntries(entries, afterSeq, afterHash, this.occurredAt());
  }

  private occurredAt(): string {
    return new Date(this.options.now?.() ?? Date.now()).toISOString();
  }
}
