import type pg from 'pg';
import { chainHash, type AuditRow } from './chain.js';
import { readAuditRows } from './reader.js';

export interface HashChainVerdict {
  ok: boolean;
  checked: number;
  firstBrokenSeq?: number;
  reason?: string;
  /** Last verified link: anchor it elsewhere (ticket, WORM storage) to detect a truncated tail. */
  head?: { seq: number; hash: string };
}

/**
 * Verifies the hash chain alone (no checkpoints, no Merkle tree: see CheckpointedLogVerifier).
 * Walks the chain in seq order (feed rows page by page). Detects an edited row (hash
 * mismatch), a deleted row (seq gap or prev_hash mismatch) and reordered rows (seq is
 * part of the hashed content, so swapping rows breaks both links).
 */
export class HashChainVerifier {
  private checked = 0;
  private previous: { seq: number; hash: Buffer } | undefined;
  private broken: { seq: number; reason: string } | undefined;

  /** Returns false once the chain is broken: later rows need not be read. */
  push(row: AuditRow): boolean {
    if (this.broken !== undefined) return false;
    const expectedSeq = (this.previous?.seq ?? 0) + 1;
    if (row.seq !== expectedSeq) {
      return this.fail(expectedSeq, row.seq > expectedSeq ? `row ${expectedSeq} is missing (next row is ${row.seq})` : `row ${row.seq} is out of order`);
    }
    const expectedPrev = this.previous?.hash ?? null;
    if (!sameBytes(row.prevHash, expectedPrev)) {
      return this.fail(row.seq, expectedPrev === null ? 'the first row must not have a prev_hash' : `prev_hash does not match the hash of row ${row.seq - 1}`);
    }
    if (!chainHash(row).equals(row.hash)) return this.fail(row.seq, 'content does not match its hash (row edited)');
    this.checked += 1;
    this.previous = { seq: row.seq, hash: row.hash };
    return true;
  }

  verdict(): HashChainVerdict {
    const head = this.previous === undefined ? {} : { head: { seq: this.previous.seq, hash: this.previous.hash.toString('hex') } };
    if (this.broken !== undefined) return { ok: false, checked: this.checked, firstBrokenSeq: this.broken.seq, reason: this.broken.reason, ...head };
    return { ok: true, checked: this.checked, ...head };
  }

  private fail(seq: number, reason: string): false {
    this.broken = { seq, reason };
    return false;
  }
}

function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b;
  return a.equals(b);
}

/** Checks the whole hash chain in the database, oldest first, a page at a time (constant memory). */
export async function verifyHashChain(db: Pick<pg.Pool, 'query'>, pageSize = 2000): Promise<HashChainVerdict> {
  const verifier = new HashChainVerifier();
  for await (const page of readAuditRows(db, { pageSize })) {
    for (const row of page) {
      if (!verifier.push(row)) return verifier.verdict();
    }
  }
  return verifier.verdict();
}
