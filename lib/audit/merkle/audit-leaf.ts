import { canonicalize, type AuditContent } from '../chain.js';
import { leafHash } from './hash.js';

/**
 * The leaf of an audit row in the transparency log: its canonical bytes as the hash chain already
 * defines them (docs/audit-format.md §1.1: RFC 8785 JCS of every column except `hash`, UTF-8),
 * unchanged. Leaf index = seq − 1, so the tree of size N covers rows 1..N. `prev_hash` is inside
 * these bytes: the tree commits to the chain links too.
 */
export function auditLeaf(row: AuditContent): Buffer {
  return Buffer.from(canonicalize(row), 'utf8');
}

/** RFC 9162 leaf hash of an audit row: SHA-256(0x00 || auditLeaf(row)). */
export function auditLeafHash(row: AuditContent): Buffer {
  return leafHash(auditLeaf(row));
}

/** The leaf index of a row (seq 1 is leaf 0). */
export function leafIndexOfSeq(seq: number): number {
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError(`seq must be a positive integer, got ${seq}`);
  return seq - 1;
}
