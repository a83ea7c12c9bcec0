import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { open, seal, SEAL_OVERHEAD_BYTES } from '../../../lib/crypto/aead.js';
import { DecryptionError } from '../../../lib/errors.js';

const key = randomBytes(32);
const aad = Buffer.from('ip_v1_x');

describe('AES-256-GCM seal/open', () => {
  it('round-trips with 28 bytes of overhead', () => {
    const sealed = seal(key, Buffer.from('199.172.111.135'), aad);
    expect(sealed.length - '199.172.111.135'.length).toBe(SEAL_OVERHEAD_BYTES);
    expect(open(key, sealed, aad).toString()).toBe('199.172.111.135');
  });

  it('uses a fresh nonce: sealing twice gives different ciphertexts', () => {
    expect(seal(key, Buffer.from('a'), aad).equals(seal(key, Buffer.from('a'), aad))).toBe(false);
  });

  it('fails on a flipped bit, another AAD, another key or a truncated blob', () => {
    const sealed = seal(key, Buffer.from('593-47-5928'), aad);
    const flipped = Buffer.from(sealed);
    flipped[14] = (flipped[14] ?? 0) ^ 1;
    expect(() => open(key, flipped, aad)).toThrow(DecryptionError);
    expect(() => open(key, sealed, Buffer.from('ip_v1_y'))).toThrow(DecryptionError);
    expect(() => open(randomBytes(32), sealed, aad)).toThrow(DecryptionError);
    expect(() => open(key, sealed.subarray(0, 20), aad)).toThrow(DecryptionError);
  });
});
