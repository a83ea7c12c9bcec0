import type { FastifyBaseLogger } from 'fastify';
import type pg from 'pg';
import { withTransaction } from '../../../db/transaction.js';
import {
  CHECKPOINT_FORMAT,
  checkpointBytes,
  checkpointDigest,
  verifyCheckpointSignature,
  type CheckpointBody,
  type SignedCheckpoint,
} from '../../../lib/audit/checkpoint.js';
import { AuditLogVerifier } from '../../../lib/audit/verifier.js';
import type { AuditSigner } from '../../../lib/keys/audit-signer.js';
import type { CheckpointPublisher } from './publisher.js';
import { latestStoredCheckpoint, readAuditRows } from '../../../lib/audit/reader.js';

// Arbitrary constant: elects the one replica that writes the next checkpoint.
export const AUDIT_CHECKPOINT_LOCK_ID = 7_468_023;

export interface CheckpointerOptions {
  origin: string;
  /** 0 disables the timer (checkpoints only on demand and at shutdown). */
  intervalMs: number;
  logger: FastifyBaseLogger;
  now?: () => number;
  onWritten?: (checkpoint: SignedCheckpoint) => void;
  onFailure?: (reason: 'sign' | 'chain' | 'database') => void;
  /** How long close() waits for the sinks. */
  drainTimeoutMs?: number;
}

export type CheckpointOutcome =
  | { status: 'written'; checkpoint: SignedCheckpoint }
  | { status: 'unchanged' }
  | { status: 'not-leader' }
  | { status: 'refused'; reason: string };

/**
 * Signs the head of the audit chain every interval when it moved, and once more on close.
 * Replicas compete for a transaction-level advisory lock per round: exactly one writes each
 * checkpoint, and if it dies another takes over at its next tick. Before signing, the rows
 * since the previous checkpoint are verified, so a chain broken in the uncovered window is
 * refused (and alarmed) instead of being signed.
 */
export class AuditCheckpointer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CheckpointOutcome> | undefined;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly signer: AuditSigner,
    private readonly publisher: CheckpointPublisher,
    private readonly options: CheckpointerOptions,
  ) {}

  start(): void {
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
    await this.publisher.close(this.options.drainTimeoutMs ?? 5_000);
  }

  private async round(): Promise<CheckpointOutcome> {
    let outcome: CheckpointOutcome;
    try {
      // A round that writes nothing commits nothing: the transaction only holds the leader lock.
      outcome = await withTransaction(this.pool, (client) => this.inTransaction(client));
    } catch (error) {
      if (!(error instanceof SignFailure)) this.options.onFailure?.('database');
      this.options.logger.warn({ err: error }, 'audit checkpoint failed; retrying next interval');
      throw error;
    }
    if (outcome.status === 'written') {
      this.options.onWritten?.(outcome.checkpoint);
      this.publisher.publish(outcome.checkpoint);
    }
    return outcome;
  }

  private async inTransaction(client: pg.PoolClient): Promise<CheckpointOutcome> {
    const { rows: lock } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [AUDIT_CHECKPOINT_LOCK_ID]);
    if (lock[0]?.locked !== true) return { status: 'not-leader' };
    const previous = await latestStoredCheckpoint(client);
    const { rows: heads } = await client.query<{ seq: string; hash: Buffer }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
    const head = heads[0];
    if (head === undefined || (previous !== undefined && Number(head.seq) <= previous.body.seq)) return { status: 'unchanged' };

    const refusal = (await this.checkPrevious(previous)) ?? (await this.checkRowsSince(client, previous, Number(head.seq)));
    if (refusal !== undefined) {
      this.options.onFailure?.('chain');
      this.options.logger.error({ reason: refusal }, 'audit checkpoint REFUSED: the audit log does not verify since the last checkpoint');
      return { status: 'refused', reason: refusal };
    }

    const body: CheckpointBody = {
      format: CHECKPOINT_FORMAT,
      origin: this.options.origin,
      index: (previous?.body.index ?? 0) + 1,
      seq: Number(head.seq),
      head_hash: head.hash.toString('hex'),
      row_count: Number(head.seq),
      time: new Date(this.options.now?.() ?? Date.now()).toISOString(),
      prev_digest: previous === undefined ? null : checkpointDigest(previous.body),
      key_id: this.signer.keyId,
      signer: this.signer.label,
    };
    const bytes = checkpointBytes(body);
    let signature: Buffer;
    try {
      signature = await this.signer.sign(bytes);
    } catch (error) {
      this.options.onFailure?.('sign');
      throw new SignFailure(error);
    }
    await client.query('INSERT INTO audit_checkpoints (idx, seq, body, signature) VALUES ($1, $2, $3, $4)', [body.index, body.seq, bytes.toString('utf8'), signature]);
    return { status: 'written', checkpoint: { body, signature } };
  }

  /** The stored previous checkpoint must be ours, unaltered: the next one chains to it. */
  private async checkPrevious(previous: SignedCheckpoint | undefined): Promise<string | undefined> {
    if (previous === undefined) return undefined;
    if (previous.body.format !== CHECKPOINT_FORMAT) return `stored checkpoint is unreadable (altered)`;
    if (previous.body.key_id !== this.signer.keyId) {
      // A rotated signing key: the old checkpoint cannot be checked here, but chaining to it is still right.
      this.options.logger.warn({ previousKeyId: previous.body.key_id, keyId: this.signer.keyId }, 'previous audit checkpoint was signed by another key');
      return undefined;
    }
    return verifyCheckpointSignature(previous, this.signer.publicKey) ? undefined : `checkpoint ${previous.body.index} in the database does not verify (altered)`;
  }

  /** Rows since the previous checkpoint link to its signed head and hash correctly. */
  private async checkRowsSince(client: pg.PoolClient, previous: SignedCheckpoint | undefined, headSeq: number): Promise<string | undefined> {
    const verifier = new AuditLogVerifier(
      previous === undefined ? {} : { from: { seq: previous.body.seq, hash: Buffer.from(previous.body.head_hash, 'hex') } },
    );
    if (previous !== undefined) {
      const { rows } = await client.query<{ hash: Buffer }>('SELECT hash FROM audit_log WHERE seq = $1', [previous.body.seq]);
      if (rows[0]?.hash.toString('hex') !== previous.body.head_hash) {
        return `row ${previous.body.seq} no longer has the hash checkpoint ${previous.body.index} signed`;
      }
    }
    for await (const page of readAuditRows(client, { afterSeq: previous?.body.seq ?? 0, toSeq: headSeq })) {
      for (const row of page) {
        if (!verifier.pushRow(row)) {
          const failure = verifier.verdict().failure;
          return `seq ${failure?.seq ?? row.seq}: ${failure?.message ?? 'broken'}`;
        }
      }
    }
    const verdict = verifier.verdict();
    return verdict.head?.seq === headSeq ? undefined : `rows end at seq ${verdict.head?.seq ?? 0}, expected ${headSeq}`;
  }
}

class SignFailure extends Error {
  constructor(cause: unknown) {
    super(`signing the audit checkpoint failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
