import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  checkpointBytes,
  checkpointDigest,
  keyIdOf,
  publicKeyFromPem,
  verifyCheckpointSignature,
} from '../../../lib/audit/checkpoint.js';
import { canonicalJson } from '../../../lib/audit/jcs.js';
import { canonicalize, canonicalizeGeneric, chainHash } from '../../../lib/audit/chain.js';
import {
  VECTOR_CHECKPOINT,
  VECTOR_CHECKPOINT_BYTES,
  VECTOR_CHECKPOINT_DIGEST,
  VECTOR_PUBLIC_KEY,
  VECTOR_ROWS,
  VECTOR_SIGNATURE,
} from './vectors.js';

describe('audit format test vectors (docs/audit-format.md)', () => {
  it.each(VECTOR_ROWS.map((vector) => [vector.content.seq, vector] as const))('row %i serialises and hashes to the published bytes', (_seq, vector) => {
    expect(canonicalize(vector.content)).toBe(vector.canonical);
    expect(chainHash(vector.content).toString('hex')).toBe(vector.hash);
  });

  it('row serialisation is RFC 8785 JCS of the row object', () => {
    for (const { content } of VECTOR_ROWS) {
      expect(canonicalJson(JSON.parse(canonicalizeGeneric(content)))).toBe(canonicalize(content));
    }
  });

  it('the fixed checkpoint serialises, digests and verifies under the fixed public key', () => {
    const publicKey = publicKeyFromPem(VECTOR_PUBLIC_KEY);
    expect(checkpointBytes(VECTOR_CHECKPOINT).toString('utf8')).toBe(VECTOR_CHECKPOINT_BYTES);
    expect(checkpointDigest(VECTOR_CHECKPOINT)).toBe(VECTOR_CHECKPOINT_DIGEST);
    expect(keyIdOf(publicKey)).toBe(VECTOR_CHECKPOINT.key_id);
    expect(verifyCheckpointSignature({ body: VECTOR_CHECKPOINT, signature: Buffer.from(VECTOR_SIGNATURE, 'base64') }, publicKey)).toBe(true);
  });

  it('a one-character change to the checkpoint no longer verifies', () => {
    const publicKey = publicKeyFromPem(VECTOR_PUBLIC_KEY);
    const signature = Buffer.from(VECTOR_SIGNATURE, 'base64');
    expect(verifyCheckpointSignature({ body: { ...VECTOR_CHECKPOINT, seq: 4 }, signature }, publicKey)).toBe(false);
    expect(verifyCheckpointSignature({ body: { ...VECTOR_CHECKPOINT, time: '2026-01-02T03:06:00.001Z' }, signature }, publicKey)).toBe(false);
  });

  it('the document publishes exactly these vectors', async () => {
    const doc = await readFile(new URL('../../../docs/audit-format.md', import.meta.url), 'utf8');
    for (const vector of VECTOR_ROWS) expect(doc).toContain(vector.hash);
    for (const text of [VECTOR_CHECKPOINT_BYTES, VECTOR_CHECKPOINT_DIGEST, VECTOR_SIGNATURE, VECTOR_PUBLIC_KEY.trim()]) expect(doc).toContain(text);
  });
});

describe('JCS (RFC 8785)', () => {
  it('sorts keys by UTF-16 code units (RFC 8785 §3.2.3 example)', () => {
    const input = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' };
    // Object.keys would put the integer-like key first: read the order from the text.
    const order = [...canonicalJson(input).matchAll(/"((?:[^"\\]|\\.)*)":/g)].map((match) => JSON.parse(`"${match[1] ?? ''}"`) as string);
    expect(order).toEqual(['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
  });

  it('serialises numbers and strings as ECMAScript does (RFC 8785 §3.2.2)', () => {
    expect(canonicalJson([1e21, 0.000001, 1e-7, -0, 333333333.3333333, 'a\u001fb\u2028"\\/'])).toBe('[1e+21,0.000001,1e-7,0,333333333.3333333,"a\\u001fb\u2028\\"\\\\/"]');
    expect(() => canonicalJson(Number.NaN)).toThrow(/NaN/);
  });
});
