import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseToken, Tokenizer } from '../../../lib/crypto/tokens.js';

const tokenizer = new Tokenizer(randomBytes(32), 1);
/** Key 00 01 02 … 1f: the known-answer vectors below are computed with it. */
const PINNED_KEY = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
const pinned = new Tokenizer(PINNED_KEY, 1);

describe('Tokenizer', () => {
  it('gives the same token for the same value and a different one for a different value', () => {
    expect(tokenizer.tokenize('ip', '199.172.111.135')).toBe(tokenizer.tokenize('ip', '199.172.111.135'));
    expect(tokenizer.tokenize('ip', '199.172.111.135')).not.toBe(tokenizer.tokenize('ip', '199.172.111.136'));
  });

  it('separates fields: the same string as ip and as device_id gives unrelated tokens', () => {
    const asIp = tokenizer.tokenize('ip', '1.2.3.4');
    const asDevice = tokenizer.tokenize('device_id', '1.2.3.4');
    expect(asIp?.slice(-43)).not.toBe(asDevice?.slice(-43));
  });

  it('tokenises equivalent IPv6 spellings alike and IPv4-mapped IPv6 like its IPv4 address', () => {
    expect(tokenizer.tokenize('ip', '2001:0DB8::0001')).toBe(tokenizer.tokenize('ip', '2001:db8::1'));
    expect(tokenizer.tokenize('ip', '::ffff:10.0.0.1')).toBe(tokenizer.tokenize('ip', '10.0.0.1'));
  });

  it('depends on the key: another key gives other tokens', () => {
    const other = new Tokenizer(randomBytes(32), 1);
    expect(other.tokenize('device_id', '593-47-5928')).not.toBe(tokenizer.tokenize('device_id', '593-47-5928'));
  });

  it('writes a self-describing token that fits varchar(256) and parses back', () => {
    const token = tokenizer.tokenize('device_id', '593-47-5928') ?? '';
    expect(token).toMatch(/^device_id_v1_[A-Za-z0-9_-]{43}$/);
    expect(token.length).toBeLessThanOrEqual(256);
    expect(parseToken(token)).toEqual({ field: 'device_id', keyVersion: 1 });
  });

  it('contains nothing of the value it stands for', () => {
    // A fixed key: with a random one, one MAC in a few thousand happens to contain "199".
    const token = pinned.tokenize('ip', '199.172.111.135') ?? '';
    expect(token).not.toContain('199');
    expect(token).not.toContain('135');
  });

  it('rejects values that are not valid for their field', () => {
    expect(tokenizer.tokenize('ip', '256.1.1.1')).toBeUndefined();
    expect(tokenizer.tokenize('ip', '01.2.3.4')).toBeUndefined();
    expect(tokenizer.tokenize('ip', 'fe80::1%eth0')).toBeUndefined();
    expect(tokenizer.tokenize('device_id', '   ')).toBeUndefined();
  });

  it('refuses malformed tokens', () => {
    expect(parseToken('ip_v1_short')).toBeUndefined();
    expect(parseToken('email_v1_' + 'a'.repeat(43))).toBeUndefined();
    expect(parseToken('ip_v0_' + 'a'.repeat(43))).toBeUndefined();
  });

  // Tokens are persisted and compared across processes and versions: a change to the HMAC
  // input (field separation, canonical form, encoding) must fail here, not silently re-key.
  it('reproduces the pinned known-answer tokens for a fixed key', () => {
    expect(pinned.tokenize('ip', '199.172.111.135')).toBe('ip_v1_wii8qWKALSjPYEqGoYnWb7zvi9VUQBIgkGvfdNGZfDY');
    expect(pinned.tokenize('device_id', '593-47-5928')).toBe('device_id_v1_Rd8nwODdXC2X-Y97QOWey5CUHzoA3AYjGg8wkg_vdJo');
    // The key version is a label in the token, not an input of the MAC (each version has its own key).
    expect(new Tokenizer(PINNED_KEY, 2).tokenize('ip', '199.172.111.135')).toBe('ip_v2_wii8qWKALSjPYEqGoYnWb7zvi9VUQBIgkGvfdNGZfDY');
    // Canonical forms share the vector.
    expect(pinned.tokenize('ip', '::ffff:199.172.111.135')).toBe('ip_v1_wii8qWKALSjPYEqGoYnWb7zvi9VUQBIgkGvfdNGZfDY');
  });
});
