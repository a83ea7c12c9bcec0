import type pg from 'pg';
import { TokenvaultError } from '../../../lib/errors.js';
import { bookFrom, READ_NOW, readUsage, readUsageBook, toArrayLiteral, type Charge, type ChargeDecision, type UsageBook } from '../budget/ledger.js';
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

/** Beyond this many actors the cached usage is rebuilt from the batch's actors (bounded memory). */
const MAX_CACHED_ACTORS = 10_000;

function withDecision(seq: number, decision: ChargeDecision | undefined): Appended {
  return decision === undefined ? { seq } : { seq, decision };
}

// Arbitrary constant: the one lock that orders every writer of the chain, across processes.
export const AUDIT_CHAIN_LOCK_ID = 7_468_022;

// A locked table or a stuck writer must turn into a 503, not requests hanging forever.
const lockStatements = (lockTimeoutMs: number) =>
  [`SET LOCAL lock_timeout = ${lockTimeoutMs}`, `SET LOCAL statement_timeout = ${lockTimeoutMs * 2}`, `SELECT pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK_ID})`].join('; ');

/** Read after the lock is held, in a statement of its own, so its snapshot sees the latest committed row. */
const READ_HEAD = 'SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1';

const insertRows = (rowsJson: string, condition = '') => `
INSERT INTO audit_log (seq, occurred_at, action, actor, roles, client_address, request_id, purpose, ticket, tokens,
                       field_counts, outcome, reason, prev_hash, hash)
SELECT r.seq, r.occurred_at::timestamptz, r.action, r.actor, r.roles, r.client_address, r.request_id, r.purpose, r.ticket,
       r.tokens, r.field_counts, r.outcome, r.reason, decode(r.prev_hash, 'hex'), decode(r.hash, 'hex')
FROM jsonb_to_recordset(${rowsJson}::jsonb) AS r(seq bigint, occurred_at text, action text, actor text, roles text[],
     client_address text, request_id text, purpose text, ticket text, tokens text[], field_counts jsonb, outcome text,
     reason text, prev_hash text, hash text)
${condition}
ORDER BY r.seq`;

const INSERT_ROWS = insertRows('$1');

/**
 * Inserts only if the chain head is still the one the rows were linked to. Runs after the lock
 * in a statement of its own (READ COMMITTED: a fresh snapshot), so it sees every committed row.
 */
const insertIfHeadIs = (rowsLiteral: string, head: ChainHead) =>
  insertRows(
    rowsLiteral,
    `WHERE EXISTS (SELECT 1 FROM (${READ_HEAD}) AS h WHERE h.seq = ${head.seq} AND h.hash = decode('${head.hash.toString('hex')}', 'hex'))`,
  );

interface ChainHead {
  seq: number;
  hash: Buffer;
}

export interface AuditWriterOptions {
  /** Most rows committed in one transaction. */
  maxBatch?: number;
  /** How long a write may wait for a lock before the request fails closed (default 5 s). */
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

interface Pending {
  entry: AuditEntry;
  charged?: ChargedEntry;
  enqueuedAt: number;
  resolve: (appended: Appended) => void;
  reject: (error: unknown) => void;
}

/**
 * Appends to the hash chain with group commit: entries arriving while a transaction is in
 * flight are written together in the next one (one lock, one head read, one INSERT, one
 * COMMIT for the whole group). append() resolves only once its row is committed.
 */
export class AuditWriter {
  private queue: Pending[] = [];
  private draining = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => undefined;
  private readonly maxBatch: number;
  private readonly beginAndLock: string;
  private readonly lockOnly: string;
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
    this.maxBatch = options.maxBatch ?? 256;
    const lockTimeoutMs = Math.max(1, Math.trunc(options.lockTimeoutMs ?? 5_000));
    this.lockOnly = lockStatements(lockTimeoutMs);
    this.beginAndLock = `BEGIN; ${this.lockOnly}`;
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
    return new Promise<Appended>((resolve, reject) => {
      this.queue.push({ entry, ...(charged === undefined ? {} : { charged }), enqueuedAt: performance.now(), resolve, reject });
      if (!this.draining) {
        this.draining = true;
        this.idle = new Promise((done) => (this.markIdle = done));
        void this.drain();
      }
    });
  }

  /** Waits for every appended entry to be committed or rejected (shutdown). */
  async flush(): Promise<void> {
    await this.idle;
  }

  /**
   * Appends rows inside the caller's open transaction (used by erase, so the vault delete and
   * its audit row commit or roll back together). Takes the chain lock; the caller commits.
   */
  async appendWithin(client: pg.PoolClient, entries: readonly AuditEntry[]): Promise<number[]> {
    // The caller may commit or roll back: the head is read again next time.
    this.knownHead = undefined;
    this.usage = undefined;
    await client.query(this.lockOnly);
    return (await this.insertAfterHead(client, entries)).seqs;
  }

  /**
   * Decides and records a budget charge inside the caller's open transaction (collection of an
   * approved request), under the chain lock; the caller appends the row with appendWithin.
   */
  async chargeWithin(client: pg.PoolClient, charge: Charge): Promise<ChargeDecision> {
    this.knownHead = undefined;
    this.usage = undefined;
    await client.query(this.lockOnly);
    const book = await readUsageBook(client, [charge.actor]);
    const decision = book.charge(charge);
    const upsert = book.upsert((value) => client.escapeLiteral(value));
    if (upsert !== undefined) await client.query(upsert);
    return decision;
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const written = batch.some((pending) => pending.charged !== undefined)
            ? await this.writeChargedBatch(batch)
            : (await this.writeBatch(batch.map((pending) => pending.entry))).map((seq): Appended => ({ seq }));
          const now = performance.now();
          this.options.onBatch?.(batch.length);
          batch.forEach((pending, index) => {
            this.options.onCommitted?.((now - pending.enqueuedAt) / 1000);
            pending.resolve(written[index] ?? { seq: 0 });
          });
        } catch (cause) {
          const error = new AuditUnavailableError({ cause });
          for (const pending of batch) pending.reject(error);
        }
      }
    } finally {
      // Same synchronous turn as the empty-queue check: an append() after this starts a new drain.
      this.draining = false;
      this.markIdle();
    }
  }

  private async writeBatch(entries: readonly AuditEntry[]): Promise<number[]> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      const head = this.knownHead;
      this.knownHead = undefined;
      if (head !== undefined) {
        // Rows without charges leave the usage as it was: the cached usage stays valid with the new head.
        const seqs = await this.tryWriteAfter(client, head, entries);
        if (seqs !== undefined) return seqs;
      }
      this.usage = undefined;
      await client.query(this.beginAndLock);
      try {
        const { seqs, last } = await this.insertAfterHead(client, entries);
        await client.query('COMMIT');
        this.knownHead = last;
        return seqs;
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
        throw error;
      }
    } catch (error) {
      broken ??= isConnectionError(error) ? (error as Error) : undefined;
      throw error;
    } finally {
      // A connection in an unknown state is destroyed rather than returned to the pool.
      client.release(broken);
    }
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
  private async writeChargedBatch(batch: readonly Pending[]): Promise<Appended[]> {
    const actors = [...new Set(batch.flatMap((pending) => (pending.charged === undefined ? [] : [pending.charged.charge.actor])))];
    const head = this.knownHead;
    const cached = this.usage;
    this.knownHead = undefined;
    this.usage = undefined;
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      if (head !== undefined && cached !== undefined && actors.every((actor) => cached.knows(actor))) {
        cached.now = Date.now() + this.databaseClockOffset;
        const written = await this.tryChargedAfter(client, head, cached, batch);
        if (written !== undefined) return written;
      }
      let results: pg.QueryResult[];
      try {
        results = (await client.query(
          `${this.beginAndLock}; ${READ_NOW}; ${readUsage(client.escapeLiteral(toArrayLiteral(actors)))}; ${READ_HEAD}`,
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
        await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
        throw error;
      }
    } catch (error) {
      broken ??= isConnectionError(error) ? (error as Error) : undefined;
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /** The one-round-trip charged write; undefined (nothing committed) when the head moved. */
  private async tryChargedAfter(client: pg.PoolClient, head: ChainHead, book: UsageBook, batch: readonly Pending[]): Promise<Appended[] | undefined> {
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
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    if (results.at(upsert === undefined ? -2 : -3)?.rowCount !== rows.length) return undefined;
    book.committed();
    this.knownHead = last;
    this.usage = book;
    return rows.map((row, index) => withDecision(row.seq, decisions[index]));
  }

  /** Decides each charge in order (a refused one is replaced by its refusal row) and links the rows after (seq, hash). */
  private decideAndLink(batch: readonly Pending[], book: UsageBook, afterSeq: number, afterHash: Buffer | null) {
    const decisions = batch.map((pending) => (pending.charged === undefined ? undefined : book.charge(pending.charged.charge)));
    const entries = batch.map((pending, index) => {
      const decision = decisions[index];
      return pending.charged !== undefined && decision !== undefined && !decision.granted ? pending.charged.refused(decision) : pending.entry;
    });
    return { ...this.link(entries, afterSeq, afterHash), decisions };
  }

  /**
   * The common case in one round trip (each round trip is held under the chain lock, so it
   * adds to every waiting request): lock, insert linked to the head this writer committed
   * last, commit. Returns undefined, having committed nothing, when someone else (another
   * instance, an erase) moved the head meanwhile.
   */
  private async tryWriteAfter(client: pg.PoolClient, head: ChainHead, entries: readonly AuditEntry[]): Promise<number[] | undefined> {
    const { rows, last } = this.link(entries, head.seq, head.hash);
    const insert = insertIfHeadIs(client.escapeLiteral(JSON.stringify(rows)), head);
    let results: pg.QueryResult[];
    try {
      results = (await client.query(`${this.beginAndLock}; ${insert}; COMMIT`)) as unknown as pg.QueryResult[];
    } catch (error) {
      // An error leaves the transaction open and aborted (the COMMIT was never reached).
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    if (results.at(-2)?.rowCount !== rows.length) return undefined;
    this.knownHead = last;
    return rows.map((row) => row.seq);
  }

  private async insertAfterHead(client: pg.PoolClient, entries: readonly AuditEntry[]): Promise<{ seqs: number[]; last: ChainHead | undefined }> {
    const head = await client.query<{ seq: string; hash: Buffer }>({ name: 'audit-head', text: READ_HEAD });
    const current = head.rows[0];
    const { rows, last } = this.link(entries, current === undefined ? 0 : Number(current.seq), current?.hash ?? null);
    await client.query({ name: 'audit-insert', text: INSERT_ROWS, values: [JSON.stringify(rows)] });
    return { seqs: rows.map((row) => row.seq), last };
  }

  /** Chains the entries after (seq, prevHash): the records to insert and the new head. */
  private link(entries: readonly AuditEntry[], afterSeq: number, afterHash: Buffer | null): { rows: ReturnType<typeof toRecord>[]; last: ChainHead | undefined } {
    let seq = afterSeq;
    let prevHash = afterHash;
    const occurredAt = new Date(this.options.now?.() ?? Date.now()).toISOString();
    const rows = entries.map((entry) => {
      seq += 1;
      const content: AuditContent = { ...storable(entry), seq, occurredAt, prevHash };
      const hash = chainHash(content);
      prevHash = hash;
      return toRecord(content, hash);
    });
    return { rows, last: prevHash === null ? undefined : { seq, hash: prevHash } };
  }
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
 * hold NUL or lone surrogates, and columns have length limits.
 */
function storable(entry: AuditEntry): Omit<AuditContent, 'seq' | 'occurredAt' | 'prevHash'> {
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

function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code);
}
