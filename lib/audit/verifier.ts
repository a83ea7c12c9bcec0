import type { KeyObject } from 'node:crypto';
import { chainHash, type AuditRow } from './chain.js';
import { CHECKPOINT_FORMAT, checkpointDigest, keyIdOf, verifyCheckpointSignature, type SignedCheckpoint } from './checkpoint.js';

/** The first thing found wrong: a row (by seq) or a checkpoint (by index). */
export interface AuditFinding {
  seq?: number;
  checkpoint?: number;
  message: string;
}

export interface CheckpointSummary {
  index: number;
  seq: number;
  time: string;
  keyId: string;
  signer: string;
  /** false when no public key was given (signature not checked). */
  signatureOk: boolean;
}

export interface AuditVerdict {
  ok: boolean;
  /** Rows whose hash was recomputed in this run. */
  checked: number;
  head: { seq: number; hash: string } | undefined;
  checkpoints: number;
  /** The newest checkpoint that verified and whose row was found with the signed hash. */
  checkpoint: CheckpointSummary | undefined;
  /** Rows after the newest verified checkpoint: not yet covered by a signature. */
  uncovered: { fromSeq: number; toSeq: number } | null;
  failure: AuditFinding | undefined;
}

/** Where an incremental run starts: everything up to here was verified before. */
export interface VerifiedPoint {
  seq: number;
  hash: Buffer;
  checkpoint?: { index: number; digest: string; seq: number; origin: string; summary: CheckpointSummary };
}

interface PendingCheckpoint {
  index: number;
  seq: number;
  headHash: string;
  summary: CheckpointSummary;
}

/**
 * Verifies an audit log against its signed checkpoints, streaming: give it every checkpoint
 * first (addCheckpoint, in index order), then every row (pushRow, in seq order), then call
 * verdict(). Memory holds the checkpoints (a few bytes each), never the rows.
 *
 * Detects: an edited row (hash mismatch), a deleted row (seq gap), reordered rows (seq and
 * prev_hash are hashed), a truncated tail (a checkpoint covers rows that are missing), a
 * wholesale recomputed chain (a checkpoint's signed head differs from the row), an altered or
 * forged checkpoint (signature), a checkpoint signed by another key (key id), a deleted
 * checkpoint (index gap / prev_digest).
 */
export class AuditLogVerifier {
  private readonly pending: PendingCheckpoint[] = [];
  /** Checkpoints over rows verified in an earlier run: their heads are checked with checkEarlier(). */
  private readonly earlier: PendingCheckpoint[] = [];
  private nextPending = 0;
  private checkpointCount = 0;
  private lastCheckpoint: { index: number; digest: string; seq: number; origin: string } | undefined;
  private coveredBy: CheckpointSummary | undefined;
  private checked = 0;
  private previous: { seq: number; hash: Buffer } | undefined;
  private failure: AuditFinding | undefined;
  private readonly publicKeyId: string | undefined;

  constructor(
    private readonly options: {
      /** Without it signatures are not checked (reported as signatureOk false). */
      publicKey?: KeyObject | undefined;
      /** Only accept checkpoints of this log. */
      origin?: string | undefined;
      /** Start after a point verified earlier (incremental verification). */
      from?: VerifiedPoint | undefined;
    } = {},
  ) {
    this.publicKeyId = options.publicKey === undefined ? undefined : keyIdOf(options.publicKey);
    const from = options.from;
    if (from !== undefined) {
      this.previous = { seq: from.seq, hash: from.hash };
      if (from.checkpoint !== undefined) {
        this.lastCheckpoint = { index: from.checkpoint.index, digest: from.checkpoint.digest, seq: from.checkpoint.seq, origin: from.checkpoint.origin };
        this.coveredBy = from.checkpoint.summary;
        this.checkpointCount = from.checkpoint.index;
      }
    }
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Returns false once something is broken: the caller may stop reading. */
  addCheckpoint(checkpoint: SignedCheckpoint): boolean {
    if (this.failure !== undefined) return false;
    const body = checkpoint.body;
    const previous = this.lastCheckpoint;
    const name = `checkpoint ${body.index}`;
    if (body.format !== CHECKPOINT_FORMAT) return this.fail({ checkpoint: body.index, message: `unknown format ${JSON.stringify(body.format)}` });
    const origin = this.options.origin ?? previous?.origin;
    if (origin !== undefined && body.origin !== origin) {
      return this.fail({ checkpoint: body.index, message: `belongs to log ${JSON.stringify(body.origin)}, not ${JSON.stringify(origin)}` });
    }
    if (this.publicKeyId !== undefined && body.key_id !== this.publicKeyId) {
      return this.fail({
        checkpoint: body.index,
        message: `signed by another key (key_id ${body.key_id.slice(0, 16)}…, the given public key is ${this.publicKeyId.slice(0, 16)}…)`,
      });
    }
    const signatureOk = this.options.publicKey !== undefined && verifyCheckpointSignature(checkpoint, this.options.publicKey);
    if (this.options.publicKey !== undefined && !signatureOk) {
      return this.fail({ checkpoint: body.index, message: 'signature does not verify (checkpoint altered or forged)' });
    }
    const expectedIndex = (previous?.index ?? 0) + 1;
    if (body.index !== expectedIndex) {
      return this.fail({
        checkpoint: expectedIndex,
        message:
          body.index > expectedIndex
            ? `checkpoint ${expectedIndex} is missing (deleted): the next one is checkpoint ${body.index}`
            : `${name} is out of order or repeated`,
      });
    }
    if (body.prev_digest !== (previous?.digest ?? null)) {
      return this.fail({
        checkpoint: body.index,
        message: `prev_digest does not match checkpoint ${expectedIndex - 1} (a checkpoint was replaced or removed)`,
      });
    }
    if (previous !== undefined && body.seq < previous.seq) {
      return this.fail({ checkpoint: body.index, message: `covers seq ${body.seq}, before checkpoint ${previous.index}'s seq ${previous.seq}` });
    }
    if (body.row_count !== body.seq) {
      return this.fail({ checkpoint: body.index, message: `row_count ${body.row_count} does not equal seq ${body.seq}` });
    }
    const summary: CheckpointSummary = { index: body.index, seq: body.seq, time: body.time, keyId: body.key_id, signer: body.signer, signatureOk };
    this.lastCheckpoint = { index: body.index, digest: checkpointDigest(body), seq: body.seq, origin: body.origin };
    this.checkpointCount += 1;
    const entry = { index: body.index, seq: body.seq, headHash: body.head_hash, summary };
    if (this.previous !== undefined && body.seq <= this.previous.seq) {
      this.earlier.push(entry);
      return true;
    }
    this.pending.push(entry);
    return true;
  }

  /** seqs of the rows whose hashes checkEarlier() needs (incremental runs only). */
  earlierSeqs(): number[] {
    return this.earlier.map((entry) => entry.seq);
  }

  /** Compares checkpoints over already-verified rows with those rows' current hashes (hex by seq). */
  checkEarlier(hashes: ReadonlyMap<number, string>): boolean {
    if (this.failure !== undefined) return false;
    for (const entry of this.earlier) {
      const hash = hashes.get(entry.seq);
      if (hash !== entry.headHash) {
        return this.fail({
          checkpoint: entry.index,
          seq: entry.seq,
          message: hash === undefined ? `row ${entry.seq} is missing` : `row ${entry.seq} no longer has the signed hash (rewritten)`,
        });
      }
      this.coveredBy = entry.summary;
    }
    this.earlier.length = 0;
    return true;
  }

  /** Returns false once the log is broken: later rows need not be read. */
  pushRow(row: AuditRow): boolean {
    if (this.failure !== undefined) return false;
    const expectedSeq = (this.previous?.seq ?? 0) + 1;
    if (row.seq !== expectedSeq) {
      return this.fail({
        seq: expectedSeq,
        message: row.seq > expectedSeq ? `row ${expectedSeq} is missing (deleted): the next row is ${row.seq}` : `row ${row.seq} is out of order (expected ${expectedSeq})`,
      });
    }
    const expectedPrev = this.previous?.hash ?? null;
    if (!sameBytes(row.prevHash, expectedPrev)) {
      return this.fail({
        seq: row.seq,
        message: expectedPrev === null ? 'the first row must not have a prev_hash' : `prev_hash does not match the hash of row ${row.seq - 1} (rows deleted or reordered)`,
      });
    }
    if (!chainHash(row).equals(row.hash)) return this.fail({ seq: row.seq, message: 'content does not match its hash (row edited)' });
    this.checked += 1;
    this.previous = { seq: row.seq, hash: row.hash };
    while (this.nextPending < this.pending.length && this.pending[this.nextPending]!.seq === row.seq) {
      const checkpoint = this.pending[this.nextPending]!;
      const hash = row.hash.toString('hex');
      if (hash !== checkpoint.headHash) {
        const since = this.coveredBy === undefined ? 1 : this.coveredBy.seq + 1;
        return this.fail({
          checkpoint: checkpoint.index,
          seq: row.seq,
          message:
            `row ${row.seq} has hash ${hash.slice(0, 16)}… but the signed head is ${checkpoint.headHash.slice(0, 16)}… ` +
            `(rows ${since}..${row.seq} were rewritten and the chain recomputed)`,
        });
      }
      this.coveredBy = checkpoint.summary;
      this.nextPending += 1;
    }
    return true;
  }

  verdict(): AuditVerdict {
    const head = this.previous === undefined ? undefined : { seq: this.previous.seq, hash: this.previous.hash.toString('hex') };
    if (this.failure === undefined && this.nextPending < this.pending.length) {
      const checkpoint = this.pending[this.nextPending]!;
      const end = this.previous?.seq ?? 0;
      this.failure = {
        checkpoint: checkpoint.index,
        seq: end + 1,
        message: `it covers rows up to seq ${checkpoint.seq}, but the log ends at seq ${end} (rows ${end + 1}..${checkpoint.seq} were deleted: truncated tail)`,
      };
    }
    const headSeq = head?.seq ?? 0;
    const coveredSeq = this.coveredBy?.seq ?? 0;
    return {
      ok: this.failure === undefined,
      checked: this.checked,
      head,
      checkpoints: this.checkpointCount,
      checkpoint: this.coveredBy,
      uncovered: this.failure === undefined && headSeq > coveredSeq ? { fromSeq: coveredSeq + 1, toSeq: headSeq } : null,
      failure: this.failure,
    };
  }

  /** Where the next incremental run can start (only meaningful when nothing failed). */
  verifiedPoint(): VerifiedPoint | undefined {
    if (this.failure !== undefined || this.previous === undefined) return undefined;
    const checkpoint = this.lastCheckpoint;
    return {
      seq: this.previous.seq,
      hash: this.previous.hash,
      ...(checkpoint === undefined || this.coveredBy === undefined || this.coveredBy.index !== checkpoint.index || this.nextPending < this.pending.length
        ? {}
        : { checkpoint: { ...checkpoint, summary: this.coveredBy } }),
    };
  }

  private fail(finding: AuditFinding): false {
    this.failure = finding;
    return false;
  }
}

/** One line for people: what is intact, or the first thing broken. */
export function describeVerdict(verdict: AuditVerdict): string {
  const failure = verdict.failure;
  if (!verdict.ok || failure !== undefined) {
    const where =
      failure?.checkpoint !== undefined ? `checkpoint ${failure.checkpoint}${failure.seq === undefined ? '' : ` (seq ${failure.seq})`}` : `seq ${failure?.seq ?? '?'}`;
    return `audit log BROKEN at ${where}: ${failure?.message ?? 'unknown failure'} (${verdict.checked} rows verified before it)`;
  }
  const head = verdict.head === undefined ? 'empty log' : `head seq ${verdict.head.seq} hash ${verdict.head.hash}`;
  const checkpoint =
    verdict.checkpoint === undefined
      ? 'no signed checkpoint covers it yet'
      : `checkpoint ${verdict.checkpoint.index} signed ${verdict.checkpoint.time} covers rows 1..${verdict.checkpoint.seq}` +
        (verdict.checkpoint.signatureOk ? ` (signature verified, key ${verdict.checkpoint.keyId.slice(0, 16)}…)` : ' (signature NOT checked: no public key given)');
  const uncovered =
    verdict.uncovered === null ? '' : `; rows ${verdict.uncovered.fromSeq}..${verdict.uncovered.toSeq} are after the last checkpoint and not yet covered by a signature`;
  return `audit log intact: ${verdict.checked} rows checked (${head}); ${verdict.checkpoints} checkpoints; ${checkpoint}${uncovered}`;
}

function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b;
  return a.equals(b);
}
