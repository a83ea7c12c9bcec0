import type { KeyObject } from 'node:crypto';
import { chainHash, type AuditRow } from './chain.js';
import { CHECKPOINT_FORMAT, checkpointDigest, keyIdOf, verifyCheckpointSignature } from './checkpoint.js';
import { recordLine, type CheckpointRecord, type NoteCheckpointRecord } from './checkpoint-record.js';
import { auditLeafHash } from './merkle/audit-leaf.js';
import { CompactRange } from './merkle/compact-range.js';
import { MerkleProofError, assertConsistency } from './merkle/verify.js';
import { NoteError } from './note/errors.js';
import { openNote } from './note/open-note.js';
import { parseSignedNote } from './note/signed-note.js';
import { parseCheckpoint } from './note/tlog-checkpoint.js';
import { ecdsaVerifier, SignatureType, type NoteVerifier } from './note/vkey.js';

/** One thing found wrong: a row (by seq) or a checkpoint (by index). */
export interface AuditFinding {
  seq?: number;
  checkpoint?: number;
  message: string;
}

export interface CheckpointSummary {
  index: number;
  kind: 'json' | 'note';
  /** Rows 1..seq are covered (v1: the head seq; note: the tree size). */
  seq: number;
  time: string;
  keyId: string;
  signer: string;
  /** false when no public key was given (signature not checked). */
  signatureOk: boolean;
  /** Names of the witnesses whose cosignatures verified (notes; empty without --witness-key). */
  cosignedBy: string[];
}

/** A checkpoint that covers more rows than were given (an export older than the checkpoint). */
export interface NewerCheckpoint {
  index: number;
  seq: number;
  time: string;
  /** Rows 1..provenSeq are proven consistent with it by the published consistency proofs (0: none). */
  provenSeq: number;
}

export interface AuditVerdict {
  ok: boolean;
  /** Rows whose hash was recomputed in this run. */
  checked: number;
  head: { seq: number; hash: string } | undefined;
  /** RFC 9162 root (hex) of the rows given, when they start at seq 1. */
  root: string | undefined;
  checkpoints: number;
  /** The newest checkpoint that verified and matched the rows. */
  checkpoint: CheckpointSummary | undefined;
  /** Rows after the newest verified checkpoint: not yet covered by a signature. */
  uncovered: { fromSeq: number; toSeq: number } | null;
  /** Checkpoints newer than the rows (export mode): not an alarm, checked as far as the published proofs reach. */
  newer: NewerCheckpoint[];
  /** Every finding, in the order found (rows in seq order after the checkpoints' own findings). */
  findings: AuditFinding[];
  /** Findings beyond the ones kept (MAX_FINDINGS). */
  omittedFindings: number;
  /** The first finding (compatibility with callers that show one). */
  failure: AuditFinding | undefined;
  /** Plain-language remarks that are not findings (a checkpoint vouched for by a later cosigned one, …). */
  notes: string[];
}

/** Where an incremental run starts: everything up to here was verified before. */
export interface VerifiedPoint {
  seq: number;
  hash: Buffer;
  /** The tree's right edge at seq (resumes the root computation). */
  peaks: Buffer[];
  /** The highest checkpoint index already verified, its summary, and its facts for the next links. */
  checkpoint?: { index: number; summary: CheckpointSummary; link: CheckpointLink };
}

/** What the next checkpoint's checks need from the previous one. */
interface CheckpointLink {
  index: number;
  kind: 'json' | 'note';
  size: number;
  digest?: string;
  root?: Buffer;
  origin: string;
}

export interface VerifierOptions {
  /** The audit signing key (ECDSA P-256): v1 signatures and the notes' type 0x02 signatures. Without it nothing signed is checked. */
  publicKey?: KeyObject | undefined;
  /** More keys of the log (e.g. its Ed25519 vkey); a note needs one verified log signature. */
  logKeys?: NoteVerifier[] | undefined;
  /** Witnesses' cosignature keys (vkey type 0x04). */
  witnessKeys?: NoteVerifier[] | undefined;
  /** Cosignatures of distinct witnesses each note checkpoint needs (0: none). */
  quorum?: number | undefined;
  /** Only accept checkpoints of this log. */
  origin?: string | undefined;
  /** Start after a point verified earlier (incremental verification of the database). */
  from?: VerifiedPoint | undefined;
  /**
   * live: the rows are the whole log as it is now (the database): a checkpoint beyond them means
   * rows were deleted. export: the rows are an export taken at exportStartedAt: a checkpoint
   * beyond them is newer than the export unless it was already there when the export started.
   */
  mode?: 'live' | 'export';
  /** Epoch ms when the export started (its export_start line). */
  exportStartedAt?: number | undefined;
  /** Tolerance between the clock that timed the checkpoints and the one that timed the export (default 5 min). */
  clockSkewMs?: number;
}

export const MAX_FINDINGS = 1000;

interface Entry {
  record: CheckpointRecord;
  /** Also in the export's own copy (the database's, at export time). */
  inExport: boolean;
  /** Only in the export's copy. */
  onlyInExport: boolean;
}

interface Pending {
  index: number;
  kind: 'json' | 'note';
  size: number;
  /** v1: head hash (hex); note: root. */
  headHash?: string;
  root?: Buffer;
  time: string;
  inExport: boolean;
  summary: CheckpointSummary;
  /** Cosignatures short of the quorum (notes only). */
  lacksQuorum: boolean;
  /** Proven by the published consistency proof to extend the previous note checkpoint (index). */
  extendsIndex?: number;
  matched?: boolean;
}

/**
 * Verifies an audit log against its checkpoints, streaming and without stopping at the first
 * finding: give it every checkpoint record first (addCheckpoint, any order; the export's own copy
 * with fromExport), then every row (pushRow, in seq order), then call verdict(). Memory holds the
 * checkpoints' facts (a few hundred bytes each) and the tree's right edge (log2 n hashes), never
 * the rows.
 *
 * Rows: an edited row (hash mismatch), deleted rows (seq gap), reordered rows (seq and prev_hash
 * are hashed). Checkpoints: altered or forged (signature), another key (key id), another log
 * (origin), missing or repeated indexes, a broken v1 chain (prev_digest), a smaller tree than the
 * one before (rollback), two roots for one size (fork), a published consistency proof that
 * fails, too few cosignatures (quorum). Rows against checkpoints: a v1 head hash or a note root
 * that the rows do not reproduce (rows rewritten and the chain or tree recomputed), rows a
 * checkpoint covers that are missing (truncated tail; in export mode only when the checkpoint
 * provably existed when the export started).
 */
export class CheckpointedLogVerifier {
  private readonly entries = new Map<number, Entry>();
  private readonly findings: AuditFinding[] = [];
  private omitted = 0;
  private readonly notes: string[] = [];
  private prepared = false;
  /** Checkpoints to compare with the rows, by size ascending. */
  private queue: Pending[] = [];
  private nextPending = 0;
  private readonly all: Pending[] = [];
  /** Checkpoints over rows verified in an earlier run (incremental). */
  private readonly earlier: Pending[] = [];
  private checkpointCount = 0;
  private lastLink: CheckpointLink | undefined;
  private coveredBy: CheckpointSummary | undefined;
  private checked = 0;
  private previous: { seq: number; hash: Buffer } | undefined;
  private range: CompactRange | undefined;
  private readonly publicKeyId: string | undefined;
  private logVerifiers: NoteVerifier[] = [];
  private origin: string | undefined;
  private rowsBroken = false;

  constructor(private readonly options: VerifierOptions = {}) {
    this.publicKeyId = options.publicKey === undefined ? undefined : keyIdOf(options.publicKey);
    const from = options.from;
    if (from !== undefined) {
      this.previous = { seq: from.seq, hash: from.hash };
      this.range = CompactRange.fromPeaks(from.seq, from.peaks);
      if (from.checkpoint !== undefined) {
        this.lastLink = from.checkpoint.link;
        this.coveredBy = from.checkpoint.summary;
        this.checkpointCount = from.checkpoint.index;
        this.origin = from.checkpoint.link.origin;
      }
    } else {
      this.range = CompactRange.empty();
    }
  }

  get failed(): boolean {
    return this.findings.length > 0 || this.omitted > 0;
  }

  /** Adds a checkpoint record; fromExport: it comes from the export's own copy (the database's at export time). */
  addCheckpoint(record: CheckpointRecord, options: { fromExport?: boolean } = {}): void {
    if (this.prepared) throw new Error('checkpoints must be added before the rows');
    const fromExport = options.fromExport === true;
    const existing = this.entries.get(record.index);
    if (existing === undefined) {
      this.entries.set(record.index, { record, inExport: fromExport, onlyInExport: fromExport });
      return;
    }
    if (recordLine(existing.record) !== recordLine(record)) {
      this.find({
        checkpoint: record.index,
        message: fromExport || existing.onlyInExport
          ? `the database's copy of checkpoint ${record.index} differs from the published one (one of them was altered or replaced)`
          : `checkpoint ${record.index} appears twice with different contents`,
      });
    }
    // A published record wins over the database's copy; an identical repeat is harmless (a resumed export).
    if (!fromExport && existing.onlyInExport) this.entries.set(record.index, { record, inExport: true, onlyInExport: false });
    else if (fromExport) existing.inExport = true;
  }

  /** seqs of the rows whose hashes checkEarlier() needs (incremental runs only). */
  earlierSeqs(): number[] {
    this.prepare();
    return this.earlier.filter((entry) => entry.kind === 'json').map((entry) => entry.size);
  }

  /** True when an incremental run met a note checkpoint over rows it verified before: only a full run can check its root. */
  needsFullRun(): boolean {
    this.prepare();
    return this.earlier.some((entry) => entry.kind === 'note');
  }

  /** Compares v1 checkpoints over already-verified rows with those rows' current hashes (hex by seq). */
  checkEarlier(hashes: ReadonlyMap<number, string>): void {
    this.prepare();
    for (const entry of this.earlier) {
      if (entry.kind !== 'json') continue;
      const hash = hashes.get(entry.size);
      if (hash !== entry.headHash) {
        this.find({
          checkpoint: entry.index,
          seq: entry.size,
          message: hash === undefined ? `row ${entry.size} is missing` : `row ${entry.size} no longer has the signed hash (rewritten)`,
        });
      } else {
        entry.matched = true;
        this.coveredBy = entry.summary;
      }
    }
    this.earlier.length = 0;
  }

  pushRow(row: AuditRow): void {
    this.prepare();
    const expectedSeq = (this.previous?.seq ?? 0) + 1;
    if (row.seq < expectedSeq) {
      this.find({ seq: row.seq, message: `row ${row.seq} is out of order (expected ${expectedSeq})` });
      return;
    }
    let linked = true;
    if (row.seq > expectedSeq) {
      this.find({
        seq: expectedSeq,
        message: row.seq === expectedSeq + 1 ? `row ${expectedSeq} is missing (deleted): the next row is ${row.seq}` : `rows ${expectedSeq}..${row.seq - 1} are missing (deleted): the next row is ${row.seq}`,
      });
      // The tree cannot be rebuilt across missing leaves: checkpoints past the gap are reported as unverifiable.
      this.rowsBroken = true;
      linked = false;
    }
    const expectedPrev = this.previous?.hash ?? null;
    if (linked && !sameBytes(row.prevHash, expectedPrev)) {
      this.find({
        seq: row.seq,
        message: expectedPrev === null ? 'the first row must not have a prev_hash' : `prev_hash does not match the hash of row ${row.seq - 1} (rows deleted or reordered)`,
      });
    } else if (!chainHash(row).equals(row.hash)) {
      this.find({ seq: row.seq, message: 'content does not match its hash (row edited)' });
    } else {
      this.checked += 1;
    }
    this.previous = { seq: row.seq, hash: row.hash };
    if (!this.rowsBroken && this.range !== undefined) this.range.append(auditLeafHash(row));
    this.compareCheckpointsAt(row);
  }

  verdict(): AuditVerdict {
    this.prepare();
    const end = this.previous?.seq ?? 0;
    const newer: NewerCheckpoint[] = [];
    for (; this.nextPending < this.queue.length; this.nextPending += 1) {
      const pending = this.queue[this.nextPending]!;
      if (pending.size <= end) continue;
      const existed = this.mode === 'live' ? 'the log ends' : this.existedAtExport(pending);
      if (existed !== undefined) {
        this.find({
          checkpoint: pending.index,
          seq: end + 1,
          message: `it covers rows up to seq ${pending.size}, but ${existed} at seq ${end} (rows ${end + 1}..${pending.size} were deleted: truncated tail)`,
        });
      } else {
        newer.push({ index: pending.index, seq: pending.size, time: pending.time, provenSeq: this.provenPrefix(pending) });
      }
    }
    this.checkQuorum(newer);
    const head = this.previous === undefined ? undefined : { seq: this.previous.seq, hash: this.previous.hash.toString('hex') };
    const headSeq = head?.seq ?? 0;
    const coveredSeq = this.coveredBy?.seq ?? 0;
    const ok = this.findings.length === 0 && this.omitted === 0;
    return {
      ok,
      checked: this.checked,
      head,
      root: this.rowsBroken || this.range === undefined ? undefined : this.range.root().toString('hex'),
      checkpoints: this.checkpointCount,
      checkpoint: this.coveredBy,
      uncovered: ok && headSeq > coveredSeq ? { fromSeq: coveredSeq + 1, toSeq: headSeq } : null,
      newer,
      findings: [...this.findings],
      omittedFindings: this.omitted,
      failure: this.findings[0],
      notes: [...this.notes],
    };
  }

  /** Where the next incremental run can start (only meaningful when nothing failed). */
  verifiedPoint(): VerifiedPoint | undefined {
    if (this.failed || this.previous === undefined || this.range === undefined || this.rowsBroken) return undefined;
    const link = this.lastLink;
    const allMatched = this.queue.every((pending) => pending.matched === true);
    return {
      seq: this.previous.seq,
      hash: this.previous.hash,
      peaks: [...this.range.peakHashes],
      ...(link === undefined || this.coveredBy === undefined || !allMatched ? {} : { checkpoint: { index: link.index, summary: this.coveredBy, link } }),
    };
  }

  private get mode(): 'live' | 'export' {
    return this.options.mode ?? 'live';
  }

  /** Returns a phrase when the checkpoint provably existed when the export started, so missing rows are a truncation. */
  private existedAtExport(pending: Pending): string | undefined {
    if (pending.inExport) return 'the export, which already holds this checkpoint, ends';
    const started = this.options.exportStartedAt;
    const signed = Date.parse(pending.time);
    if (started === undefined || Number.isNaN(signed)) return undefined;
    const skew = this.options.clockSkewMs ?? 5 * 60_000;
    if (signed + skew < started) return `it was signed at ${pending.time}, before the export started at ${new Date(started).toISOString()}, yet the export ends`;
    return undefined;
  }

  /** Rows 1..n proven consistent with a newer checkpoint through the chain of published consistency proofs back to a matched one. */
  private provenPrefix(pending: Pending): number {
    let current: Pending | undefined = pending;
    const byIndex = new Map(this.all.map((entry) => [entry.index, entry]));
    while (current !== undefined && current.extendsIndex !== undefined) {
      const previous = byIndex.get(current.extendsIndex);
      if (previous === undefined) return 0;
      if (previous.matched === true) return previous.size;
      current = previous;
    }
    return 0;
  }

  private compareCheckpointsAt(row: AuditRow): void {
    while (this.nextPending < this.queue.length && this.queue[this.nextPending]!.size <= row.seq) {
      const pending = this.queue[this.nextPending]!;
      this.nextPending += 1;
      if (pending.size < row.seq) continue; // a checkpoint over a row that was missing: reported with the gap
      if (pending.kind === 'json') {
        const hash = row.hash.toString('hex');
        if (hash !== pending.headHash) {
          this.find({
            checkpoint: pending.index,
            seq: row.seq,
            message:
              `row ${row.seq} has hash ${hash.slice(0, 16)}… but the signed head is ${pending.headHash?.slice(0, 16) ?? '?'}… ` +
              `(rows ${this.since()}..${row.seq} were rewritten and the chain recomputed)`,
          });
          continue;
        }
      } else {
        if (this.rowsBroken || this.range === undefined) {
          this.find({ checkpoint: pending.index, seq: row.seq, message: `its tree of ${pending.size} rows cannot be rebuilt: rows before it are missing` });
          continue;
        }
        const root = this.range.root();
        if (!root.equals(pending.root!)) {
          const fork = this.coveredBy?.kind === 'note' && this.coveredBy.seq === row.seq;
          this.find({
            checkpoint: pending.index,
            seq: row.seq,
            message:
              `rows 1..${row.seq} have the tree root ${root.toString('hex').slice(0, 16)}… but the signed root is ${pending.root!.toString('hex').slice(0, 16)}… ` +
              (fork
                ? `(checkpoint ${this.coveredBy!.index} signs the tree these rows have: this one is another tree of them (a fork))`
                : `(rows ${this.since()}..${row.seq} were rewritten, deleted or inserted)`),
          });
          continue;
        }
      }
      pending.matched = true;
      this.coveredBy = pending.summary;
    }
  }

  private since(): number {
    return this.coveredBy === undefined ? 1 : this.coveredBy.seq + 1;
  }

  /** Checks the checkpoints among themselves, once, before the first row. */
  private prepare(): void {
    if (this.prepared) return;
    this.prepared = true;
    const indexes = [...this.entries.keys()].sort((a, b) => a - b);
    this.origin ??= this.options.origin ?? firstOrigin(indexes.map((index) => this.entries.get(index)!.record));
    if (this.options.publicKey !== undefined && this.origin !== undefined) {
      try {
        this.logVerifiers = [ecdsaVerifier(this.origin, this.options.publicKey.export({ type: 'spki', format: 'der' }))];
      } catch {
        // An origin that is no key name (a v1-only log may have one): notes of it cannot exist either.
        this.logVerifiers = [];
      }
    }
    // The same key given twice (the PEM and its vkey) is one key.
    for (const key of this.options.logKeys ?? []) if (!this.logVerifiers.some((known) => known.verifierKey === key.verifierKey)) this.logVerifiers.push(key);
    // The published sequence itself must have no gap (the database's copy may fill one: still a finding).
    const publishedIndexes = indexes.filter((index) => !this.entries.get(index)!.onlyInExport);
    for (let position = 1; position < publishedIndexes.length; position += 1) {
      const [before, after] = [publishedIndexes[position - 1]!, publishedIndexes[position]!];
      if (after > before + 1 && indexes.includes(before + 1)) {
        this.find({
          checkpoint: before + 1,
          message: `the published checkpoints lack ${after === before + 2 ? `checkpoint ${before + 1}` : `checkpoints ${before + 1}..${after - 1}`} (removed from the published copy; the database's copy has it)`,
        });
      }
    }
    let expected = (this.lastLink?.index ?? 0) + 1;
    for (const index of indexes) {
      if (index < expected) continue; // verified in an earlier run
      if (index > expected) {
        this.find({
          checkpoint: expected,
          message: index === expected + 1 ? `checkpoint ${expected} is missing (deleted): the next one is checkpoint ${index}` : `checkpoints ${expected}..${index - 1} are missing (deleted): the next one is checkpoint ${index}`,
        });
      }
      const entry = this.entries.get(index)!;
      const pending = entry.record.kind === 'json' ? this.checkJson(entry) : this.checkNote(entry, entry.record);
      expected = index + 1;
      if (pending === undefined) continue;
      this.checkpointCount += 1;
      this.all.push(pending);
      if (this.previous !== undefined && this.options.from !== undefined && pending.size <= this.previous.seq) this.earlier.push(pending);
      else this.queue.push(pending);
    }
    this.queue.sort((a, b) => a.size - b.size || a.index - b.index);
  }

  private checkJson(entry: Entry): Pending | undefined {
    if (entry.record.kind !== 'json') return undefined;
    const checkpoint = entry.record.checkpoint;
    const body = checkpoint.body;
    const index = entry.record.index;
    const previous = this.lastLink;
    if (body.format !== CHECKPOINT_FORMAT) return this.skip(index, `unknown format ${JSON.stringify(body.format)} (altered)`);
    if (this.origin !== undefined && body.origin !== this.origin) {
      return this.skip(index, `belongs to log ${JSON.stringify(body.origin)}, not ${JSON.stringify(this.origin)}`);
    }
    if (this.publicKeyId !== undefined && body.key_id !== this.publicKeyId) {
      return this.skip(index, `signed by another key (key_id ${body.key_id.slice(0, 16)}…, the given public key is ${this.publicKeyId.slice(0, 16)}…)`);
    }
    const signatureOk = this.options.publicKey !== undefined && verifyCheckpointSignature(checkpoint, this.options.publicKey);
    if (this.options.publicKey !== undefined && !signatureOk) return this.skip(index, 'signature does not verify (checkpoint altered or forged)');
    if (previous?.kind === 'json' && previous.index === index - 1 && body.prev_digest !== previous.digest) {
      this.find({ checkpoint: index, message: `prev_digest does not match checkpoint ${index - 1} (a checkpoint was replaced or removed)` });
    } else if (previous === undefined && index === 1 && body.prev_digest !== null) {
      this.find({ checkpoint: index, message: 'the first checkpoint must not have a prev_digest' });
    }
    if (previous !== undefined && body.seq < previous.size) {
      this.find({ checkpoint: index, message: `covers seq ${body.seq}, before checkpoint ${previous.index}'s seq ${previous.size} (rolled back)` });
    }
    if (body.row_count !== body.seq) this.find({ checkpoint: index, message: `row_count ${body.row_count} does not equal seq ${body.seq}` });
    this.lastLink = { index, kind: 'json', size: body.seq, digest: checkpointDigest(body), origin: body.origin };
    const summary: CheckpointSummary = { index, kind: 'json', seq: body.seq, time: body.time, keyId: body.key_id, signer: body.signer, signatureOk, cosignedBy: [] };
    return { index, kind: 'json', size: body.seq, headHash: body.head_hash, time: body.time, inExport: entry.inExport, summary, lacksQuorum: false };
  }

  private checkNote(entry: Entry, record: NoteCheckpointRecord): Pending | undefined {
    const index = record.index;
    let text: string;
    let parsed: ReturnType<typeof parseCheckpoint>;
    try {
      text = parseSignedNote(record.note).text;
      parsed = parseCheckpoint(text);
    } catch (error) {
      if (error instanceof NoteError) return this.skip(index, `the signed note is malformed: ${error.message} (altered)`);
      throw error;
    }
    if (this.origin !== undefined && parsed.origin !== this.origin) {
      return this.skip(index, `belongs to log ${JSON.stringify(parsed.origin)}, not ${JSON.stringify(this.origin)}`);
    }
    let signatureOk = false;
    let keyId = '';
    const cosignedBy: string[] = [];
    const known = [...this.logVerifiers, ...(this.options.witnessKeys ?? [])];
    if (this.logVerifiers.length > 0) {
      try {
        const opened = openNote(record.note, known);
        const logSignatures = opened.verified.filter((signature) => signature.verifier.type !== SignatureType.CosignatureV1);
        for (const signature of opened.verified) {
          if (signature.verifier.type === SignatureType.CosignatureV1 && !cosignedBy.includes(signature.name)) cosignedBy.push(signature.name);
        }
        if (logSignatures.length === 0) return this.skip(index, 'carries no signature of the log\'s key (forged, or signed by another key)');
        signatureOk = true;
        const ecdsa = logSignatures.find((signature) => signature.verifier.type === SignatureType.Ecdsa);
        keyId = ecdsa !== undefined && this.publicKeyId !== undefined ? this.publicKeyId : logSignatures[0]!.verifier.verifierKey.split('+')[1]!;
      } catch (error) {
        if (!(error instanceof NoteError)) throw error;
        if (error.code === 'note_unverified') return this.skip(index, 'carries no signature of the log\'s key (forged, or signed by another key)');
        return this.skip(index, `${error.message} (checkpoint altered or forged)`);
      }
    }
    const previous = this.lastLink;
    let extendsIndex: number | undefined;
    if (previous !== undefined && parsed.size < previous.size) {
      this.find({ checkpoint: index, message: `covers ${parsed.size} rows, fewer than checkpoint ${previous.index}'s ${previous.size} (rolled back)` });
    } else if (previous?.kind === 'note' && previous.root !== undefined) {
      if (parsed.size === previous.size && !parsed.rootHash.equals(previous.root)) {
        this.find({ checkpoint: index, message: `signs a different root for the same ${parsed.size} rows as checkpoint ${previous.index} (a fork)` });
      } else if (parsed.size === previous.size) {
        extendsIndex = previous.index;
      } else if (record.consistency !== undefined) {
        if (record.consistency.fromSize !== previous.size) {
          this.find({ checkpoint: index, message: `its consistency proof starts at size ${record.consistency.fromSize}, not at checkpoint ${previous.index}'s ${previous.size}` });
        } else {
          try {
            assertConsistency(previous.size, parsed.size, previous.root, parsed.rootHash, record.consistency.proof);
            extendsIndex = previous.index;
          } catch (error) {
            if (!(error instanceof MerkleProofError || error instanceof RangeError)) throw error;
            this.find({
              checkpoint: index,
              message: `does not extend checkpoint ${previous.index}: the published consistency proof from ${previous.size} to ${parsed.size} rows fails (${error.message}): the log was forked or rewritten`,
            });
          }
        }
      }
    }
    this.lastLink = { index, kind: 'note', size: parsed.size, root: parsed.rootHash, origin: parsed.origin };
    const quorum = this.options.quorum ?? 0;
    const summary: CheckpointSummary = { index, kind: 'note', seq: parsed.size, time: record.time, keyId, signer: 'signed note', signatureOk, cosignedBy };
    return {
      index,
      kind: 'note',
      size: parsed.size,
      root: parsed.rootHash,
      time: record.time,
      inExport: entry.inExport,
      summary,
      lacksQuorum: cosignedBy.length < quorum,
      ...(extendsIndex === undefined ? {} : { extendsIndex }),
    };
  }

  /**
   * A note checkpoint short of the quorum is vouched for when a later checkpoint that has it
   * matched the same rows (one tree, so the earlier one is its prefix); otherwise it is a finding.
   */
  private checkQuorum(newer: NewerCheckpoint[]): void {
    const quorum = this.options.quorum ?? 0;
    if (quorum <= 0) return;
    const newerIndexes = new Set(newer.map((item) => item.index));
    const notes = this.all.filter((entry) => entry.kind === 'note');
    for (const entry of notes) {
      if (!entry.lacksQuorum) continue;
      const voucher = notes.find((later) => later.index > entry.index && !later.lacksQuorum && this.extendsOf(later, entry));
      if (voucher !== undefined) {
        this.notes.push(`checkpoint ${entry.index} has ${entry.summary.cosignedBy.length} of ${quorum} witness cosignatures, but checkpoint ${voucher.index} (cosigned) extends it`);
        continue;
      }
      this.find({
        checkpoint: entry.index,
        message:
          `has ${entry.summary.cosignedBy.length} of the ${quorum} witness cosignatures required${newerIndexes.has(entry.index) ? ' (and is newer than these rows)' : ''}: ` +
          'no witness vouched for it (they were unreachable when it was signed, or refused it as a fork), and no later cosigned checkpoint extends it',
      });
    }
  }

  /** later's tree extends earlier's: both reproduced from the same rows, or linked by published consistency proofs. */
  private extendsOf(later: Pending, earlier: Pending): boolean {
    if (later.matched === true && earlier.matched === true) return true;
    const byIndex = new Map(this.all.map((entry) => [entry.index, entry]));
    let current: Pending | undefined = later;
    while (current !== undefined && current.index > earlier.index) {
      if (current.extendsIndex === undefined) return false;
      current = byIndex.get(current.extendsIndex);
    }
    return current?.index === earlier.index;
  }

  private skip(index: number, message: string): undefined {
    this.find({ checkpoint: index, message });
    return undefined;
  }

  private find(finding: AuditFinding): void {
    if (this.findings.length >= MAX_FINDINGS) this.omitted += 1;
    else this.findings.push(finding);
  }
}

function firstOrigin(records: CheckpointRecord[]): string | undefined {
  for (const record of records) {
    if (record.kind === 'json') {
      if (record.checkpoint.body.format === CHECKPOINT_FORMAT) return record.checkpoint.body.origin;
      continue;
    }
    try {
      return parseCheckpoint(parseSignedNote(record.note).text).origin;
    } catch {
      // unreadable: reported when it is checked
    }
  }
  return undefined;
}

/** Where a finding is, for people. */
export function describeFinding(finding: AuditFinding): string {
  const where =
    finding.checkpoint !== undefined ? `checkpoint ${finding.checkpoint}${finding.seq === undefined ? '' : ` (seq ${finding.seq})`}` : `seq ${finding.seq ?? '?'}`;
  return `${where}: ${finding.message}`;
}

/**
 * For people: the first line says intact or BROKEN (with the first finding), the next lines
 * every finding, newer checkpoints and remarks. Never an alarm for an export older than a checkpoint.
 */
export function describeVerdict(verdict: AuditVerdict): string {
  const lines: string[] = [];
  const total = verdict.findings.length + verdict.omittedFindings;
  if (!verdict.ok) {
    const first = verdict.failure;
    lines.push(
      `audit log BROKEN at ${first === undefined ? '?' : describeFinding(first)} (${total} finding${total === 1 ? '' : 's'}; ${verdict.checked} rows verified)`,
    );
    for (const finding of verdict.findings.slice(1)) lines.push(`  also BROKEN at ${describeFinding(finding)}`);
    if (verdict.omittedFindings > 0) lines.push(`  … and ${verdict.omittedFindings} more findings not listed`);
  } else {
    const head = verdict.head === undefined ? 'empty log' : `head seq ${verdict.head.seq} hash ${verdict.head.hash}`;
    const checkpoint =
      verdict.checkpoint === undefined
        ? verdict.checkpoints === 0
          ? 'no signed checkpoint yet (the first is signed within one checkpoint interval of the first audit row)'
          : 'no signed checkpoint covers these rows yet'
        : `${describeCheckpoint(verdict.checkpoint)} covers rows 1..${verdict.checkpoint.seq}` +
          (verdict.checkpoint.signatureOk ? ` (signature verified, key ${verdict.checkpoint.keyId.slice(0, 16)}…${cosigned(verdict.checkpoint)})` : ' (signature NOT checked: no public key given)');
    const uncovered =
      verdict.uncovered === null ? '' : `; rows ${verdict.uncovered.fromSeq}..${verdict.uncovered.toSeq} are after the last checkpoint and not yet covered by a signature`;
    lines.push(`audit log intact: ${verdict.checked} rows checked (${head}); ${verdict.checkpoints} checkpoints; ${checkpoint}${uncovered}`);
  }
  const end = verdict.head?.seq ?? 0;
  for (const newer of verdict.newer) {
    const proven =
      newer.provenSeq > 0
        ? `rows 1..${newer.provenSeq} are consistent with it (published consistency proofs)${newer.provenSeq < end ? `; rows ${newer.provenSeq + 1}..${end} cannot be checked against it without a consistency proof from size ${end}` : ''}`
        : `it cannot be checked against ${end} rows without a consistency proof from size ${end}`;
    lines.push(`  export ends at seq ${end}, older than checkpoint ${newer.index} (${newer.seq} rows, signed ${newer.time}): not an alarm; ${proven} (export again to check it fully)`);
  }
  for (const note of verdict.notes) lines.push(`  note: ${note}`);
  return lines.join('\n');
}

function describeCheckpoint(summary: CheckpointSummary): string {
  return `checkpoint ${summary.index} ${summary.kind === 'note' ? '(signed note) ' : ''}signed ${summary.time}`;
}

function cosigned(summary: CheckpointSummary): string {
  if (summary.kind !== 'note') return '';
  return summary.cosignedBy.length === 0 ? ', no witness cosignature checked' : `, cosigned by ${summary.cosignedBy.join(', ')}`;
}

function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b;
  return a.equals(b);
}
