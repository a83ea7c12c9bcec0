import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DecryptionError } from '../errors.js';

/**
 * AES-256-GCM with a random 96-bit nonce. Sealed layout: nonce (12) | ciphertext | tag (16),
 * so the per-value overhead is 28 bytes (the AWS Encryption SDK spends ~600 B per message).
 * Random nonces are safe for 2^32 encryptions per key; callers rotate data keys far sooner.
 */
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const SEAL_OVERHEAD_BYTES = NONCE_BYTES + TAG_BYTES;

export function seal(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const final = cipher.final();
  return Buffer.concat([nonce, body, final, cipher.getAuthTag()]);
}

export function open(key: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  if (sealed.length < SEAL_OVERHEAD_BYTES) throw new DecryptionError('ciphertext is shorter than nonce and tag');
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const body = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch (cause) {
    throw new DecryptionError('authenticated decryption failed (wrong key, tampered ciphertext or mismatched context)', { cause });
  }
}

/**
 * Seals many values under one key, drawing all nonces from a single CSPRNG call (a
 * per-value randomBytes(12) dominates the cost of sealing short values). Same layout as seal().
 */
export function sealAll(key: Buffer, items: readonly { plaintext: Buffer; aad: Buffer }[]): Buffer[] {
  const nonces = randomBytes(NONCE_BYTES * items.length);
  return items.map(({ plaintext, aad }, index) => {
    const nonce = nonces.subarray(index * NONCE_BYTES, (index + 1) * NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(aad);
    const body = cipher.update(plaintext);
    const final = cipher.final();
    return Buffer.concat([nonce, body, final, cipher.getAuthTag()]);
  });
}
