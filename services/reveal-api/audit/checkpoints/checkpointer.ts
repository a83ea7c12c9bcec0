import type { FastifyBaseLogger } from 'fastify';
import type pg from 'pg';
import { withTransaction } from '../../../../db/transaction.js';
import type { NoteCheckpointRecord } from '../../../../lib/audit/checkpoint-record.js';
import { consistencyProof, MissingNodeError, type NodeStore } from '../../../../lib/audit/merkle/node-store.js';
import { assertConsistency, MerkleProofError } from '../../../../lib/audit/merkle/verify.js';
import { signNote, type NoteSigner } from '../../../../lib/audit/note/signer.js';
import { formatCheckpoint } from '../../../../lib/audit/note/tlog-checkpoint.js';
import { latestStoredCheckpoint } from '../../../../lib/audit/reader.js';
import { submitCheckpoint, WitnessError, type Cosignature, type WitnessEndpoint } from '../../../../lib/audit/witness-client.js';
import { newestIndexed, type AnchorPoint, type CheckpointAnchor } from './anchor.js';
import type { CheckpointPublisher } from './publisher.js';
import type { RowChecker } from './row-checker.js';

// Arbitrary constant: elects the one replica that writes the next checkpoint.
export const AUDIT_CHECKPOINT_LOCK_ID = 7_468_023;

/** The stored Merkle tree (audit_tree_nodes), read inside the checkpointer's transaction. */
export interface StoredTree {
  head(client: pg.PoolClient): Promise<{ size: number; root: Buffer }>;
  nodes(client: pg.PoolClient): NodeStore;
}

/** Why a round did not sign: the label of tokenvault_audit_checkpoint_failures_total. */
export type CheckpointFailure = 'sign' | 'database' | 'chain' | 'inconsistent' | 'unanchored' | 'witness_refused';

export interface CheckpointerOptions {
  origin: string;
  /** 0 disables the timer (checkpoints only on demand and at shutdown). */
  intervalMs: number;
  logger: FastifyBaseLogger;
  now?: () => number;
  onWritten?: (record: NoteCheckpointRecord, size: number) => void;
  onFailure?: (reason: CheckpointFailure) => void;
  onCosignature?: (witness: string, result: 'ok' | 'unavailable' | 'refused') => void;
  /** How long close() waits for the sinks. */
  drainTimeoutMs?: number;
  witnessTimeoutMs?: number;
}

export type CheckpointOutcome =
  | { status: 'written'; record: NoteCheckpointRecord; size: number; root: Buffer; cosignatures: Cosignature[] }
  | { status: 'unchanged' }
  | { status: 'not-leader' }
  | { status: 'refused'; reason: string; failure: CheckpointFailure };

/** What /readyz shows about checkpoints. */
export interface CheckpointerState {
  lastWritten: { index: number; size: number; time: string } | undefined;
  /** Set while the newest round refused to sign (tampering evidence), cleared by the next checkpoint written. */
  refused: { failure: CheckpointFailure; reason: string; since: string } | undefined;
  /** Witnesses that did not cosign the newest checkpoint. */
  witnessesMissing: string[];
}

export interface CheckpointerDeps {
  pool: pg.Pool;
  tree: StoredTree;
  /** The log's note signers: ECDSA P-256 (the audit signing key) first, Ed25519 when configured. */
  signers: readonly NoteSigner[];
  anchor: CheckpointAnchor;
  publisher: CheckpointPublisher;
  rowChecker: RowChecker;
  witnesses: readonly WitnessEndpoint[];
}

/**
 * Signs the stored Merkle tree's head as a C2SP checkpoint note every interval when the log
 * moved, has witnesses cosign it, stores and publishes it; once more on close. Replicas compete
 * for a transaction-level advisory lock per round: exactly one writes each checkpoint, and if it
 * dies another takes over at its next tick (and publishes whatever the first stored but did not
 * publish).
 *
 * Before signing, the tree must extend every checkpoint published before (sinks read back,
 * witnesses, memory, the database: CheckpointAnchor) by a consistency proof from the stored
 * nodes, and the rows since the newest one must hash to the stored leaves (RowChecker, on a worker
 * thread). Otherwise the round refuses: an error log, a metric, /readyz — never a signature over
 * a rewritten log, even after audit_checkpoints was deleted. Signing costs O(log n) on this
 * thread: the root comes from the stored tree's right edge.
 */
export class AuditCheckpointer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CheckpointOutcome> | undefined;
  private closed = false;
  private started = false;
  readonly state: CheckpointerState = { lastWritten: undefined, refused: undefined, witnessesMissing: [] };

  constructor(
    private readonly deps: CheckpointerDeps,
    private readonly options: CheckpointerOptions,
  ) {}

  /** Publishes what was stored but not yet published (a restart after a kill -9), then starts the timer. */
  start(): void {
    if (this.started) return;
    this.started = true;
    void latestStoredCheckpoint(this.deps.pool).then(
      (latest) => this.deps.publisher.start(latest?.index ?? 0),
      (error: unknown) => this.options.logger.warn({ err: error }, 'stored audit checkpoints could not be read at start; the next round publishes them'),
    );
    if (this.options.intervalMs <= 0 || this.timer !== undefined) return;
    this.timer = setInterval(() => void this.checkpointNow().catch(() => undefined), this.options.intervalMs);
    this.timer.unref();
  }

  /** One round; concurrent callers share it. */
  checkpointNow(): Promise<CheckpointOutcome> {
    this.running ??= this.round().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Stops the timer, writes a last checkpoint of what is committed, waits for the sinks (bounded). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
    await this.round().catch((error: unknown) => this.options.logger.error({ err: error }, 'final audit checkpoint failed'));
    await this.deps.publisher.close(this.options.drainTimeoutMs ?? 5_000);
    await this.deps.rowChecker.close();
  }

  private async round(): Promise<CheckpointOutcome> {
    let outcome: CheckpointOutcome;
    try {
      // A round that writes nothing commits nothing: the transaction only holds the leader lock.
      outcome = await withTransaction(this.deps.pool, (client) => this.inTransaction(client));
    } catch (error) {
      if (!(error instanceof SignFailure)) this.options.onFailure?.('database');
      this.options.logger.warn({ err: error }, 'audit checkpoint failed; retrying next interval');
      throw error;
    }
    if (outcome.status === 'written') {
      this.state.refused = undefined;
      this.state.lastWritten = { index: outcome.record.index, size: outcome.size, time: outcome.record.time };
      this.deps.anchor.remember(pointOf(outcome.record, outcome.size, outcome.root));
      this.options.onWritten?.(outcome.record, outcome.size);
      this.deps.publisher.publishUpTo(outcome.record.index, outcome.record);
    } else if (outcome.status === 'refused') {
      this.options.onFailure?.(outcome.failure);
      this.state.refused = { failure: outcome.failure, reason: outcome.reason, since: this.state.refused?.since ?? new Date(this.now()).toISOString() };
      this.options.logger.error({ reason: outcome.reason, failure: outcome.failure }, 'audit checkpoint REFUSED: the audit log does not extend what was published and witnessed');
    }
    return outcome;
  }

  private async inTransaction(client: pg.PoolClient): Promise<CheckpointOutcome> {
    const { rows: lock } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [AUDIT_CHECKPOINT_LOCK_ID]);
    if (lock[0]?.locked !== true) return { status: 'not-leader' };
    const stored = await latestStoredCheckpoint(client);
    // A new leader (or a restarted one) publishes what a predecessor stored but did not publish.
    if (stored !== undefined) this.deps.publisher.publishUpTo(stored.index);
    const store = this.deps.tree.nodes(client);
    let head: { size: number; root: Buffer };
    try {
      head = await this.deps.tree.head(client);
    } catch (error) {
      if (error instanceof MissingNodeError) return refuse('inconsistent', `the stored tree lacks a node of its right edge (${error.message}): nodes were deleted`);
      throw error;
    }
    if (head.size === 0) return { status: 'unchanged' };

    const reading = await this.deps.anchor.read(stored);
    if (reading.invalid.length > 0) return refuse('inconsistent', `a published checkpoint does not verify: ${reading.invalid.join('; ')}`);
    const external = this.deps.publisher.sinks.some((sink) => sink.latest !== undefined) || this.deps.witnesses.length > 0;
    const readExternally = reading.points.some((point) => point.source !== 'the database') || reading.unreadable.length === 0;
    if (external && !readExternally) {
      // Nothing outside the database could be read and this process signed nothing yet: the
      // database alone could have been rolled back or rewritten with its checkpoints deleted.
      return refuse('unanchored', `cannot read back what was published (${reading.unreadable.join(', ')}): not signing until one of them answers`);
    }

    // Every published checkpoint must be a prefix of the stored tree.
    for (const point of reading.points) {
      const problem = await this.extends(client, store, point, head);
      if (problem !== undefined) return refuse('inconsistent', problem);
    }
    const notes = reading.points.filter((point): point is Extract<AnchorPoint, { kind: 'note' }> => point.kind === 'note');
    const newestNote = notes.reduce<(typeof notes)[number] | undefined>((best, point) => (best === undefined || point.size > best.size ? point : best), undefined);
    if (newestNote !== undefined && newestNote.size === head.size) return { status: 'unchanged' };

    // The rows since the newest note checkpoint (all rows before the first one) are the stored leaves.
    const fromSeq = Math.max(1, newestNote?.size ?? 1);
    const check = await this.deps.rowChecker.check({ fromSeq, toSeq: head.size });
    if (!check.ok) return refuse('chain', `seq ${check.failure?.seq ?? '?'}: ${check.failure?.message ?? 'broken'}`);

    const text = formatCheckpoint({ origin: this.options.origin, size: head.size, rootHash: head.root, extensions: [] });
    let note: string;
    try {
      note = await signNote(text, this.deps.signers);
    } catch (error) {
      this.options.onFailure?.('sign');
      throw new SignFailure(error);
    }
    const cosigned = await this.cosign(note, head.size, store, reading.witnessSizes);
    if ('refused' in cosigned) return refuse('witness_refused', cosigned.refused);

    const previous = newestIndexed(reading.points);
    const index = (previous?.index ?? 0) + 1;
    const consistency =
      previous?.kind === 'note' && previous.size > 0 && previous.size < head.size
        ? { fromSize: previous.size, proof: await consistencyProof(store, previous.size, head.size) }
        : undefined;
    const record: NoteCheckpointRecord = {
      kind: 'note',
      index,
      time: new Date(this.now()).toISOString(),
      note: `${note}${cosigned.cosignatures.map((cosignature) => cosignature.line).join('')}`,
      ...(consistency === undefined ? {} : { consistency }),
    };
    await client.query(
      // recorded_at: the clock when the row is written, after the tree head was read (an export
      // started later holds every row this checkpoint covers: lib/audit/reader.ts exportLines).
      `INSERT INTO audit_checkpoints (idx, seq, note, tree_size, root_hash, signed_at, proof_from_size, consistency_proof, recorded_at)
       VALUES ($1, $2, $3, $2, $4, $5, $6, $7, clock_timestamp())`,
      [index, head.size, record.note, head.root, record.time, consistency?.fromSize ?? null, consistency?.proof ?? null],
    );
    return { status: 'written', record, size: head.size, root: head.root, cosignatures: cosigned.cosignatures };
  }

  /** Undefined when the stored tree of `head` extends the published point; otherwise why not. */
  private async extends(client: pg.PoolClient, store: NodeStore, point: AnchorPoint, head: { size: number; root: Buffer }): Promise<string | undefined> {
    const name = `${point.index === undefined ? 'the checkpoint' : `checkpoint ${point.index}`} from ${point.source}`;
    if (point.size > head.size) {
      return `the stored tree has ${head.size} rows, fewer than ${name} (${point.size} rows): rows were deleted or the tree rolled back`;
    }
    if (point.kind === 'json') {
      const { rows } = await client.query<{ hash: Buffer }>('SELECT hash FROM audit_log WHERE seq = $1', [point.size]);
      return rows[0]?.hash.toString('hex') === point.headHash ? undefined : `row ${point.size} no longer has the hash ${name} signed: rows were rewritten`;
    }
    try {
      const proof = point.size === head.size || point.size === 0 ? [] : await consistencyProof(store, point.size, head.size);
      assertConsistency(point.size, head.size, point.root, head.root, proof);
      return undefined;
    } catch (error) {
      if (error instanceof MerkleProofError || error instanceof MissingNodeError) {
        return `the stored tree (${head.size} rows) does not extend ${name} (${point.size} rows): ${error.message}; rows or tree nodes were rewritten`;
      }
      throw error;
    }
  }

  /** Submits the note to every witness at once; a refusal (fork, rollback) stops the round, an unreachable witness does not. */
  private async cosign(note: string, size: number, store: NodeStore, sizes: ReadonlyMap<string, number>): Promise<{ cosignatures: Cosignature[] } | { refused: string }> {
    type Result = { witness: string; cosignature: Cosignature } | { witness: string; error: WitnessError; refused: boolean };
    const results = await Promise.all(
      this.deps.witnesses.map(async (witness): Promise<Result> => {
        try {
          const cosignature = await submitCheckpoint(witness, note, sizes.get(witness.verifier.name) ?? 0, (from) => consistencyProof(store, from, size), {
            timeoutMs: this.options.witnessTimeoutMs ?? 5_000,
          });
          this.options.onCosignature?.(witness.verifier.name, 'ok');
          return { witness: witness.verifier.name, cosignature };
        } catch (error) {
          if (!(error instanceof WitnessError)) throw error;
          const refused = error.code === 'witness_inconsistent' || error.code === 'witness_ahead';
          this.options.onCosignature?.(witness.verifier.name, refused ? 'refused' : 'unavailable');
          this.options.logger.warn({ err: error, witness: witness.verifier.name }, refused ? 'witness REFUSED the audit checkpoint' : 'witness did not cosign the audit checkpoint; it is published without');
          return { witness: witness.verifier.name, error, refused };
        }
      }),
    );
    for (const result of results) if ('error' in result && result.refused) return { refused: `witness ${result.witness}: ${result.error.message}` };
    this.state.witnessesMissing = results.flatMap((result) => ('error' in result ? [result.witness] : []));
    return { cosignatures: results.flatMap((result) => ('cosignature' in result ? [result.cosignature] : [])) };
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }
}

function refuse(failure: CheckpointFailure, reason: string): CheckpointOutcome {
  return { status: 'refused', failure, reason };
}

function pointOf(record: NoteCheckpointRecord, size: number, root: Buffer): AnchorPoint {
  return { kind: 'note', source: 'this process (the last checkpoint it signed)', index: record.index, size, root };
}

class SignFailure extends Error {
  constructor(cause: unknown) {
    super(`signing the audit checkpoint failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
