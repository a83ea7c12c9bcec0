import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import { cosignatureMessage, encodeCosignature } from '../audit/note/cosignature-message.js';
import type { NoteSigner } from '../audit/note/signer.js';
import { formatVerifierKey, keyIdOfEcdsaKey, keyIdOfNamedKey, rawEd25519PublicKey, SignatureType } from '../audit/note/vkey.js';
import type { AuditSigner } from './audit-signer.js';

/** Signs notes with a local Ed25519 key (signed-note type 0x01: RFC 8032 Ed25519 over the note text). */
export function ed25519NoteSigner(name: string, privateKey: KeyObject): NoteSigner {
  const publicKey = rawEd25519PublicKey(privateKey);
  const keyId = keyIdOfNamedKey(name, SignatureType.Ed25519, publicKey);
  return {
    name,
    keyId,
    verifierKey: formatVerifierKey(name, keyId, SignatureType.Ed25519, publicKey),
    sign: async (text) => sign(null, text, privateKey),
  };
}

/**
 * Signs notes with the audit signing key, ECDSA P-256, in AWS KMS or a local file (signed-note type
 * 0x02 as transparency-dev/witness and Rekor implement it). kms:Sign with ECDSA_SHA_256 returns
 * an ASN.1 DER signature over SHA-256 of the message, which is exactly this type's encoding, so
 * nothing is converted; the key ID is the first four bytes of SHA-256 of the DER SPKI, i.e. the
 * first eight hex digits of the JSON checkpoints' key_id.
 */
export function ecdsaNoteSigner(name: string, auditSigner: AuditSigner): NoteSigner {
  const spki = auditSigner.publicKey.export({ type: 'spki', format: 'der' });
  const keyId = keyIdOfEcdsaKey(spki);
  return {
    name,
    keyId,
    verifierKey: formatVerifierKey(name, keyId, SignatureType.Ecdsa, spki),
    sign: (text) => auditSigner.sign(text),
  };
}

/**
 * A witness's timestamped Ed25519 cosigner (c2sp.org/tlog-cosignature, type 0x04). `now` is in
 * milliseconds; the timestamp is POSIX seconds and "MUST NOT be zero" (tlog-witness).
 */
export function ed25519Cosigner(name: string, privateKey: KeyObject, now: () => number = Date.now): NoteSigner {
  const publicKey = rawEd25519PublicKey(createPublicKey(privateKey));
  const keyId = keyIdOfNamedKey(name, SignatureType.CosignatureV1, publicKey);
  return {
    name,
    keyId,
    verifierKey: formatVerifierKey(name, keyId, SignatureType.CosignatureV1, publicKey),
    sign: async (text) => {
      const timestamp = Math.floor(now() / 1000);
      if (timestamp <= 0) throw new RangeError('the cosignature timestamp must be after 1970');
      return encodeCosignature(timestamp, sign(null, cosignatureMessage(timestamp, text), privateKey));
    },
  };
}
