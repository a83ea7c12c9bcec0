import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { cosignatureMessage, COSIGNATURE_SIGNATURE_BYTES, readCosignatureTimestamp } from './cosignature-message.js';
import { NoteError } from './errors.js';
import { decodeBase64Strict, isValidKeyName } from './signed-note.js';

/**
 * Signature types of C2SP signed-note ("Signature types"), the ones this project signs or checks:
 * 0x01 Ed25519 over the note text; 0x02 ECDSA as github.com/transparency-dev/witness implements
 * it (DER signature over SHA-256 of the text, key ID from the DER SPKI); 0x04 timestamped Ed25519
 * cosignatures of c2sp.org/tlog-cosignature.
 */
export const SignatureType = { Ed25519: 0x01, Ecdsa: 0x02, CosignatureV1: 0x04 } as const;
export type SignatureType = (typeof SignatureType)[keyof typeof SignatureType];

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ECDSA_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/** Checks one signature made by one known key. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  readonly type: SignatureType;
  /** `name+hex(key ID)+base64(type || public key)`. */
  readonly verifierKey: string;
  verify(text: Buffer, signature: Buffer): boolean;
  /** For timestamped cosignatures: the POSIX timestamp inside a signature of this key. */
  timestampOf?(signature: Buffer): number | undefined;
}

/**
 * signed-note "It is RECOMMENDED that key IDs be the first four bytes (interpreted in big-endian
 * order) of the SHA-256 hash of … the key name, a newline, a single signature type identifier
 * byte …, and the encoding of the public key." (Used for 0x01 and 0x04.)
 */
export function keyIdOfNamedKey(name: string, type: SignatureType, publicKey: Uint8Array): number {
  return createHash('sha256').update(name, 'utf8').update(Buffer.from([0x0a, type])).update(publicKey).digest().readUInt32BE(0);
}

/** signed-note 0x02: "the key ID for these signatures is the truncated SHA-256 hash of the DER encoded public key in SPKI format." */
export function keyIdOfEcdsaKey(spkiDer: Uint8Array): number {
  return createHash('sha256').update(spkiDer).digest().readUInt32BE(0);
}

/** signed-note "Verifier keys": `<key name>+hex(32-bit key ID)+base64(signature type || public key)`. */
export function formatVerifierKey(name: string, keyId: number, type: SignatureType, publicKey: Uint8Array): string {
  if (!isValidKeyName(name)) throw new NoteError('vkey_invalid', `invalid key name ${JSON.stringify(name)}`);
  return `${name}+${(keyId >>> 0).toString(16).padStart(8, '0')}+${Buffer.concat([Buffer.from([type]), publicKey]).toString('base64')}`;
}

/** The raw 32-byte Ed25519 public key of a node KeyObject (RFC 8032 encoding). */
export function rawEd25519PublicKey(key: KeyObject): Buffer {
  if (key.asymmetricKeyType !== 'ed25519') throw new NoteError('vkey_invalid', 'not an Ed25519 key');
  const der = (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
  return der.subarray(ED25519_SPKI_PREFIX.length);
}

export function ed25519PublicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new NoteError('vkey_invalid', `an Ed25519 public key is 32 bytes, got ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** Verifier of plain Ed25519 note signatures (type 0x01). */
export function ed25519Verifier(name: string, publicKey: Uint8Array): NoteVerifier {
  const key = ed25519PublicKeyFromRaw(publicKey);
  const keyId = keyIdOfNamedKey(name, SignatureType.Ed25519, publicKey);
  return {
    name,
    keyId,
    type: SignatureType.Ed25519,
    verifierKey: formatVerifierKey(name, keyId, SignatureType.Ed25519, publicKey),
    verify: (text, signature) => signature.length === 64 && safeVerify(null, text, key, signature),
  };
}

/** Verifier of ECDSA note signatures (type 0x02): DER (ASN.1) signature over SHA-256 of the text. */
export function ecdsaVerifier(name: string, spkiDer: Uint8Array): NoteVerifier {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new NoteError('vkey_invalid', 'the ECDSA key is not a DER SubjectPublicKeyInfo', { cause });
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve === undefined || !ECDSA_CURVES.has(curve)) {
    throw new NoteError('vkey_invalid', 'type 0x02 keys must be ECDSA on NIST P-256, P-384 or P-521');
  }
  const keyId = keyIdOfEcdsaKey(spkiDer);
  return {
    name,
    keyId,
    type: SignatureType.Ecdsa,
    verifierKey: formatVerifierKey(name, keyId, SignatureType.Ecdsa, spkiDer),
    verify: (text, signature) => safeVerify('sha256', text, { key, dsaEncoding: 'der' }, signature),
  };
}

/** Verifier of timestamped Ed25519 cosignatures (type 0x04, c2sp.org/tlog-cosignature). */
export function cosignatureVerifier(name: string, publicKey: Uint8Array): NoteVerifier {
  const key = ed25519PublicKeyFromRaw(publicKey);
  const keyId = keyIdOfNamedKey(name, SignatureType.CosignatureV1, publicKey);
  return {
    name,
    keyId,
    type: SignatureType.CosignatureV1,
    verifierKey: formatVerifierKey(name, keyId, SignatureType.CosignatureV1, publicKey),
    verify: (text, signature) => {
      const timestamp = readCosignatureTimestamp(signature);
      if (timestamp === undefined || signature.length !== COSIGNATURE_SIGNATURE_BYTES) return false;
      return safeVerify(null, cosignatureMessage(timestamp, text), key, signature.subarray(8));
    },
    timestampOf: readCosignatureTimestamp,
  };
}

/**
 * Parses a vkey strictly: a valid name, exactly eight lower-case hex digits, canonical base64,
 * a supported type with well-formed key material, and a key ID that matches the key (as
 * golang.org/x/mod/sumdb/note NewVerifier checks).
 */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const first = vkey.indexOf('+');
  const second = first < 0 ? -1 : vkey.indexOf('+', first + 1);
  if (second < 0) throw new NoteError('vkey_invalid', 'a verifier key has three parts: name+keyid+key');
  const name = vkey.slice(0, first);
  const hexId = vkey.slice(first + 1, second);
  const material = decodeBase64Strict(vkey.slice(second + 1));
  if (!isValidKeyName(name)) throw new NoteError('vkey_invalid', 'the verifier key has an invalid key name');
  if (!/^[0-9a-f]{8}$/.test(hexId)) throw new NoteError('vkey_invalid', 'the key ID of a verifier key is eight lower-case hex digits');
  if (material === undefined || material.length < 2) throw new NoteError('vkey_invalid', 'the key of a verifier key is not standard base64');
  const type = material[0]!;
  const publicKey = material.subarray(1);
  let verifier: NoteVerifier;
  if (type === SignatureType.Ed25519) verifier = ed25519Verifier(name, publicKey);
  else if (type === SignatureType.Ecdsa) verifier = ecdsaVerifier(name, publicKey);
  else if (type === SignatureType.CosignatureV1) verifier = cosignatureVerifier(name, publicKey);
  else throw new NoteError('vkey_unsupported', `signature type 0x${type.toString(16).padStart(2, '0')} is not supported (0x01, 0x02 and 0x04 are)`);
  if (verifier.keyId !== Number.parseInt(hexId, 16)) throw new NoteError('vkey_invalid', `the key ID ${hexId} does not match the key (expected ${verifier.verifierKey.split('+')[1]})`);
  return verifier;
}

function safeVerify(algorithm: string | null, data: Buffer, key: Parameters<typeof verify>[2], signature: Buffer): boolean {
  try {
    return verify(algorithm, data, key, signature);
  } catch {
    return false;
  }
}
