import { describe, expect, it } from 'vitest';
import { chainHash, type AuditRow } from '../../../lib/audit/chain.js';
import { HashChainVerifier } from '../../../lib/audit/hash-chain-verifier.js';
import { auditContent } from '../../support/audit-content.js';

const content = auditContent;

function chain(length: number): AuditRow[] {
  const rows: AuditRow[] = [];
  let prev: Buffer | null = null;
  for (let seq = 1; seq <= length; seq += 1) {
    const row = content(seq, prev);
    const hash = chainHash(row);
    rows.push({ ...row, hash });
    prev = hash;
  }
  return rows;
}

function verify(rows: AuditRow[]) {
  const verifier = new HashChainVerifier();
  for (const row of rows) if (!verifier.push(row)) break;
  return verifier.verdict();
}

describe('the hash chain verifier', () => {
  it('links each hash to the previous one', () => {
    const rows = chain(3);
    expect(rows[1]?.prevHash?.equals(rows[0]?.hash ?? Buffer.alloc(0))).toBe(true);
    expect(verify(rows)).toEqual({ ok: true, checked: 3, head: { seq: 3, hash: rows[2]?.hash.toString('hex') } });
  });

  it('detects an edited row', () => {
    const rows = chain(4);
    rows[2] = { ...rows[2]!, outcome: 'denied' };
    expect(verify(rows)).toMatchObject({ ok: false, checked: 2, firstBrokenSeq: 3, reason: expect.stringMatching(/edited/) });
  });

  it('detects a deleted row', () => {
    const rows = chain(4);
    rows.splice(1, 1);
    expect(verify(rows)).toMatchObject({ ok: false, firstBrokenSeq: 2, reason: expect.stringMatching(/missing/) });
  });

  it('detects rows swapped into each other’s place', () => {
    const rows = chain(4);
    const [second, third] = [rows[1]!, rows[2]!];
    rows[1] = { ...third, seq: 2 };
    rows[2] = { ...second, seq: 3 };
    expect(verify(rows)).toMatchObject({ ok: false, firstBrokenSeq: 2 });
  });

  it('accepts an empty log', () => {
    expect(verify([])).toEqual({ ok: true, checked: 0 });
  });

});
