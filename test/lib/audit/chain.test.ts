import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalize, canonicalizeGeneric, chainHash } from '../../../lib/audit/chain.js';
import { auditContent } from '../../support/audit-content.js';

const content = auditContent;

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
