import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalize, canonicalizeGeneric, chainHash, ChainVerifier, type AuditContent, type AuditRow } from '../../../lib/audit/chain.js';

function content(seq: number, prevHash: Buffer | null, overrides: Partial<AuditContent> = {}): AuditContent {
  return {
    seq,
    occurredAt: '2024-05-01T12:00:00.123Z',
    action: 'reveal',
    actor: 'alice',
    roles: ['investigator'],
    clientAddress: '127.0.0.1',
    requestId: `req-${seq}`,
    purpose: 'fraud investigation',
    ticket: null,
    tokens: ['ip_v1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    fieldCounts: { ip: 1, device_id: 0 },
    outcome: 'allowed',
    reason: null,
    prevHash,
    ...overrides,
  };
}

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
  const verifier = new ChainVerifier();
  for (const row of rows) if (!verifier.push(row)) break;
  return verifier.verdict();
}

describe('audit hash chain', () => {
  it('serialises with sorted keys at every level, independent of insertion order', () => {
    const a = canonicalize(content(1, null, { fieldCounts: { ip: 1, device_id: 2 } }));
    const b = canonicalize(content(1, null, { fieldCounts: { device_id: 2, ip: 1 } }));
    expect(a).toBe(b);
    expect(a.indexOf('"action"')).toBeLessThan(a.indexOf('"actor"'));
    expect(a).toContain('"field_counts":{"device_id":2,"ip":1}');
  });

  it('has a fast path identical to the generic sorted-keys serialisation', () => {
    for (const row of [content(1, null), content(7, Buffer.alloc(32, 7), { actor: null, ticket: 'T-"1"', fieldCounts: { z: 1, a: 2 }, reason: 'ü\u2028' })]) {
      expect(canonicalize(row)).toBe(canonicalizeGeneric(row));
    }
  });

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

  // Third parties recompute these hashes from the stored rows: the canonical form and the
  // chaining rule are a published format. Any change to either must fail here.
  it('reproduces the pinned known-answer canonical form and hashes of a fixed row', () => {
    const first = content(1, null);
    const canonical =
      '{"action":"reveal","actor":"alice","client_address":"127.0.0.1","field_counts":{"device_id":0,"ip":1},' +
      '"occurred_at":"2024-05-01T12:00:00.123Z","outcome":"allowed","prev_hash":null,"purpose":"fraud investigation","reason":null,' +
      '"request_id":"req-1","roles":["investigator"],"seq":1,"ticket":null,"tokens":["ip_v1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]}';
    expect(canonicalize(first)).toBe(canonical);
    expect(chainHash(first).toString('hex')).toBe('b3ceb8e25aa0770923b90632fbcb4ea2f395f42dd64bbdcc32f93ba136ddbf5c');
    // The rule in one line, as an outside verifier writes it: sha256(prev_hash bytes || canonical JSON).
    expect(createHash('sha256').update(canonical, 'utf8').digest('hex')).toBe('b3ceb8e25aa0770923b90632fbcb4ea2f395f42dd64bbdcc32f93ba136ddbf5c');
    const second = content(2, chainHash(first));
    expect(chainHash(second).toString('hex')).toBe('7340b02980d97bd78ce21b7d1225b4f16c61da0ee5e9e797d55cff972e9393e9');
  });
});
