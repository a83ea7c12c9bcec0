import type pg from 'pg';
import { rollback, withClient, type Discard } from '../../db/transaction.js';
import { AuditUnavailableError, linkEntries, type AuditEntry, type ChainHead } from './entry.js';
import { DEFAULT_LOCK_TIMEOUT_MS, insertIfHeadIs, insertRows, lockChain, READ_HEAD } from './sql.js';
import { insertAfterHead } from './insert.js';
import type { CompactRange } from './merkle/compact-range.js';
import { TreeCatchUp, type CatchUpOptions } from './tree-backfill.js';
import { nodesJson, READ_TIP } from './tree-sql.js';
import { growTree, tipOf } from './tree-store.js';
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

function withDecision<D>(seq: number, decision: D | undefined): Appended<D> {
  return decision === undefined ? { seq } : { seq, decision };
}

/**
 * What a charged batch decides in its own transaction, under the chain lock, before its rows are
 * linked: budget charges (lib/budget/charges.ts implements it). The writer knows nothing of what
 * is charged; it runs the charger's reads in its locking round trip and its store with the rows.
 */
export interface BatchCharger<C, D extends { granted: boolean }> {
  /** The chain moved without this writer: whatever the charger cached no longer mirrors the tables. */
  forget(): void;
  /** Starts deciding one batch's charges (in queue order); what was cached is handed to the round. */
  begin(charges: readonly C[]): ChargeRound<C, D>;
}

export interface ChargeRound<C, D> {
  /** A book from cached state alone (the batch then takes one round trip), or undefined when it does not cover the batch. */
  cached(): ChargeBook<C, D> | undefined;
  /** Statements run in the locking round trip, after the lock, before the head is read. */
  reads(escapeLiteral: (value: string) => string): string[];
  /** The book from their results; `headUnchanged`: nothing moved since this writer's last commit. */
  fromResults(results: readonly (pg.QueryResult | undefined)[], headUnchanged: boolean): ChargeBook<C, D>;
}

export interface ChargeBook<C, D> {
  decide(charge: C): D;
  /** The statement storing what the decisions changed (guarded by `condition`, a WHERE clause), or undefined when nothing did. */
  store(escapeLiteral: (value: string) => string, condition?: string): string | undefined;
  /** The batch committed: the book mirrors the tables, and may serve the next batch. */
  committed(): void;
}

export interface AuditWriterOptions<C = never, D extends { granted: boolean } = never> {
  /** Most rows committed in one transaction. */
  maxBatch?: number;
  /** How long a write may wait for the chain lock before the request fails closed (default 5 s). */
  lockTimeoutMs?: number;
  /** Seconds each entry waited from append() to commit (the audit share of a request's latency). */
  onCommitted?: (seconds: number) => void;
  onBatch?: (size: number) => void;
  now?: () => number;
  /**
   * Writes each row's Merkle leaf and the nodes it completes in the row's transaction (default
   * true). false is for benchmarks that measure what the tree costs: rows are then written
   * without nodes (as an older version would) and the tree lags until a catch-up.
   */
  treeNodes?: boolean;
  /** The background catch-up started when the stored tree is found behind the log (logging, batch size). */
  treeCatchUp?: CatchUpOptions;
  /** Decides charges in the transaction of their rows (appendCharged); lib/budget/charges.ts for budgets. */
  charger?: BatchCharger<C, D>;
}

/** A charge decided in the transaction of its audit row; `refused` is the row written when it does not fit. */
export interface ChargedEntry<C, D> {
  charge: C;
  refused: (decision: D) => AuditEntry;
}

export interface Appended<D = never> {
  seq: number;
  decision?: D;
}

interface Queued<C, D> {
  entry: AuditEntry;
  charged?: ChargedEntry<C, D>;
  enqueuedAt: number;
}

/**
 * Appends to the hash chain with group commit (lib/group-commit.ts): entries arriving while a
 * transaction is in flight are written together in the next one (one lock, one head read, one
 * INSERT, one COMMIT for the whole group). append() resolves only once its row is committed.
 * One writer at a time: every row links to the one before it.
 */
export class AuditWriter<C = never, D extends { granted: boolean } = never> {
  private readonly groups: GroupCommit<Queued<C, D>, Appended<D>>;
  private readonly beginAndLock: string;
  /** The last row this writer committed: the next batch links to it without reading it first. */
  private knownHead: ChainHead | undefined;
  /** The Merkle tree as of knownHead (valid only together with it; undefined: not known, read it with the head). */
  private knownTree: CompactRange | undefined;
  private readonly treeNodes: boolean;
  private readonly catchUp: TreeCatchUp;

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: AuditWriterOptions<C, D> = {},
  ) {
    this.beginAndLock = `BEGIN; ${lockChain(options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS)}`;
    this.groups = new GroupCommit({ commit: (batch) => this.commit(batch), writers: 1, maxWeight: options.maxBatch ?? 256, retryAlone: refusedForItsContent });
    this.treeNodes = options.treeNodes ?? true;
    this.catchUp = new TreeCatchUp(pool, { lockTimeoutMs: options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, ...options.treeCatchUp });
  }

  /**
   * Starts a background catch-up of the Merkle tree over rows that have no leaf yet (at start:
   * rows an older version wrote; the writer also starts one itself whenever it finds the tree
   * behind the log). Cheap when there is nothing to do: one transaction.
   */
  catchUpTree(): void {
    if (this.treeNodes) this.catchUp.request();
  }

  /** Resolves once no tree catch-up is running (tests). */
  treeCaughtUp(): Promise<void> {
    return this.catchUp.idle();
  }

  /** Waits for every appended entry, then stops the tree catch-up (shutdown). */
  async close(): Promise<void> {
    await this.flush();
    await this.catchUp.stop();
  }

  /** Resolves with the row's seq once it is committed; rejects with AuditUnavailableError. */
  append(entry: AuditEntry): Promise<number> {
    return this.enqueue(entry, undefined).then((appended) => appended.seq);
  }

  /**
   * Appends `entry` if its charge fits, or `charged.refused(decision)` if it does not: the
   * decision, what it stores (budget usage) and the row commit in one transaction (group-committed
   * with other entries), so every replica sees one count and no charge exists without its row.
   * Needs the writer's `charger`.
   */
  appendCharged(entry: AuditEntry, charged: ChargedEntry<C, D>): Promise<Appended<D>> {
    if (this.options.charger === undefined) return Promise.reject(new Error('this audit writer has no charger: construct it with options.charger'));
    return this.enqueue(entry, charged);
  }

  private enqueue(entry: AuditEntry, charged: ChargedEntry<C, D> | undefined): Promise<Appended<D>> {
    return this.groups.submit({ entry, ...(charged === undefined ? {} : { charged }), enqueuedAt: performance.now() }).catch((cause: unknown) => {
      throw new AuditUnavailableError({ cause });
    });
  }

  /** Waits for every appended entry to be committed or rejected (shutdown). */
  async flush(): Promise<void> {
    await this.groups.idle();
  }

  private async commit(batch: readonly Queued<C, D>[]): Promise<Appended<D>[]> {
    const charger = this.options.charger;
    const written =
      charger !== undefined && batch.some((queued) => queued.charged !== undefined)
        ? await this.writeChargedBatch(charger, batch)
        : (await this.writeBatch(batch.map((queued) => queued.entry))).map((seq): Appended<D> => ({ seq }));
    const now = performance.now();
    this.options.onBatch?.(batch.length);
    for (const queued of batch) this.options.onCommitted?.((now - queued.enqueuedAt) / 1000);
    return written;
  }

  private writeBatch(entries: readonly AuditEntry[]): Promise<number[]> {
    return withClient(this.pool, async (client, discard) => {
      const head = this.knownHead;
      const tree = this.knownTree;
      this.forgetHead();
      if (head !== undefined && (tree !== undefined || !this.treeNodes)) {
        // Rows without charges leave what was charged as it was: the charger's cache stays valid with the new head.
        const seqs = await this.tryWriteAfter(client, discard, head, tree, entries);
        if (seqs !== undefined) return seqs;
      }
      this.options.charger?.forget();
      await client.query(this.beginAndLock);
      try {
        const inserted = await insertAfterHead(client, entries, this.occurredAt(), { treeNodes: this.treeNodes });
        await client.query('COMMIT');
        this.remember(inserted.last, inserted.tree);
        return inserted.seqs;
      } catch (error) {
        await rollback(client, discard);
        throw error;
      }
    });
  }

  /**
   * Charged batches. Usually one round trip, like uncharged ones: while the chain head is the
   * one this writer committed last, nobody else has charged since (every charge is written with
   * its audit row, under the chain lock), so what the charger cached for the batch is the
   * table's: decide against it, then lock, insert linked to that head, store the charges only if
   * the insert happened, commit. Otherwise, two round trips: (lock, the charger's reads, head),
   * then (charges, rows, commit). Charges are decided in queue order, so two requests of one
   * actor in one batch cannot both spend the last values.
   */
  private writeChargedBatch(charger: BatchCharger<C, D>, batch: readonly Queued<C, D>[]): Promise<Appended<D>[]> {
    const round = charger.begin(batch.flatMap((queued) => (queued.charged === undefined ? [] : [queued.charged.charge])));
    const head = this.knownHead;
    const tree = this.knownTree;
    this.forgetHead();
    return withClient(this.pool, async (client, discard) => {
      const escape = (value: string) => client.escapeLiteral(value);
      if (head !== undefined && (tree !== undefined || !this.treeNodes)) {
        const cached = round.cached();
        const written = cached === undefined ? undefined : await this.tryChargedAfter(client, discard, head, tree, cached, batch);
        if (written !== undefined) return written;
      }
      let results: pg.QueryResult[];
      try {
        const reads = round.reads(escape);
        results = (await client.query(`${[this.beginAndLock, ...reads, this.treeNodes ? READ_TIP : READ_HEAD].join('; ')}`)) as unknown as pg.QueryResult[];
        const tip = tipOf(results.at(-1)?.rows[0] as { seq: string; hash: Buffer; peaks?: Buffer[] } | undefined);
        const current = tip.head;
        // Nothing moved since this writer's last commit: what the charger knew of others still holds.
        const headUnchanged = head !== undefined && current !== undefined && current.seq === head.seq && current.hash.equals(head.hash);
        const book = round.fromResults(reads.length === 0 ? [] : results.slice(-(reads.length + 1), -1), headUnchanged);
        const { rows, last, leaves, decisions } = this.decideAndLink(batch, book, current?.seq ?? 0, current?.hash ?? null);
        const grown = this.treeNodes && tip.tree !== undefined ? growTree(tip.tree, leaves) : undefined;
        const store = book.store(escape);
        const insert = insertRows(client.escapeLiteral(JSON.stringify(rows)), '', grown === undefined ? undefined : client.escapeLiteral(nodesJson(grown.nodes)));
        await client.query(`${store === undefined ? '' : `${store}; `}${insert}; COMMIT`);
        book.committed();
        this.remember(last, grown?.tree);
        return rows.map((row, index) => withDecision(row.seq, decisions[index]));
      } catch (error) {
        await rollback(client, discard);
        throw error;
      }
    });
  }

  /** The one-round-trip charged write; undefined (nothing committed) when the head moved. */
  private async tryChargedAfter(
    client: pg.PoolClient,
    discard: Discard,
    head: ChainHead,
    tree: CompactRange | undefined,
    book: ChargeBook<C, D>,
    batch: readonly Queued<C, D>[],
  ): Promise<Appended<D>[] | undefined> {
    const { rows, last, leaves, decisions } = this.decideAndLink(batch, book, head.seq, head.hash);
    const grown = tree === undefined ? undefined : growTree(tree, leaves);
    const insert = insertIfHeadIs(client.escapeLiteral(JSON.stringify(rows)), head, grown === undefined ? undefined : client.escapeLiteral(nodesJson(grown.nodes)));
    const lastRow = rows.at(-1);
    // Reads this transaction's own insert: no row, no charge.
    const inserted =
      lastRow === undefined ? 'WHERE false' : `WHERE EXISTS (SELECT 1 FROM audit_log WHERE seq = ${lastRow.seq} AND hash = decode('${lastRow.hash}', 'hex'))`;
    const store = book.store((value) => client.escapeLiteral(value), inserted);
    let results: pg.QueryResult[];
    try {
      results = (await client.query(`${this.beginAndLock}; ${insert}; ${store === undefined ? '' : `${store}; `}COMMIT`)) as unknown as pg.QueryResult[];
    } catch (error) {
      await rollback(client, discard);
      throw error;
    }
    if (results.at(store === undefined ? -2 : -3)?.rowCount !== rows.length) return undefined;
    book.committed();
    this.remember(last, grown?.tree);
    return rows.map((row, index) => withDecision(row.seq, decisions[index]));
  }

  /** Decides each charge in order (a refused one is replaced by its refusal row) and links the rows after (seq, hash). */
  private decideAndLink(batch: readonly Queued<C, D>[], book: ChargeBook<C, D>, afterSeq: number, afterHash: Buffer | null) {
    const decisions = batch.map((queued) => (queued.charged === undefined ? undefined : book.decide(queued.charged.charge)));
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
  private async tryWriteAfter(client: pg.PoolClient, discard: Discard, head: ChainHead, tree: CompactRange | undefined, entries: readonly AuditEntry[]): Promise<number[] | undefined> {
    const { rows, last, leaves } = this.link(entries, head.seq, head.hash);
    const grown = tree === undefined ? undefined : growTree(tree, leaves);
    const insert = insertIfHeadIs(client.escapeLiteral(JSON.stringify(rows)), head, grown === undefined ? undefined : client.escapeLiteral(nodesJson(grown.nodes)));
    let results: pg.QueryResult[];
    try {
      results = (await client.query(`${this.beginAndLock}; ${insert}; COMMIT`)) as unknown as pg.QueryResult[];
    } catch (error) {
      // An error leaves the transaction open and aborted (the COMMIT was never reached).
      await rollback(client, discard);
      throw error;
    }
    if (results.at(-2)?.rowCount !== rows.length) return undefined;
    this.remember(last, grown?.tree);
    return rows.map((row) => row.seq);
  }

  /**
   * After a commit: the head and the tree this writer's next batch extends. A tree that was not
   * written (the stored tree is behind the log) starts the catch-up; until it is done, batches
   * read the head and the tree's edge first, and write nodes again once it reaches the head.
   */
  private remember(head: ChainHead | undefined, tree: CompactRange | undefined): void {
    this.knownHead = head;
    this.knownTree = tree;
    if (tree === undefined && this.treeNodes) this.catchUp.request();
  }

  private forgetHead(): void {
    this.knownHead = undefined;
    this.knownTree = undefined;
  }

  /** Chains the entries after (seq, prevHash), stamped with this writer's clock. */
  private link(entries: readonly AuditEntry[], afterSeq: number, afterHash: Buffer | null) {
    return linkEntries(entries, afterSeq, afterHash, this.occurredAt());
  }

  private occurredAt(): string {
    return new Date(this.options.now?.() ?? Date.now()).toISOString();
  }
}
