/**
 * c2sp.org/tlog-cosignature v1 (Ed25519): the signature is a timestamped_signature
 * `struct { u64 timestamp; opaque ed25519_signature[64]; }`, "the timestamp encoded in big-endian
 * order", and the signed message is "two newline (U+000A) terminated lines (one header line and one
 * timestamp line) followed by the whole note body of the cosigned checkpoint (including the final
 * newline, but not including any signature lines)": `cosignature/v1\ntime <timestamp>\n<body>`.
 */

export const COSIGNATURE_HEADER = 'cosignature/v1';
/** 8-byte timestamp + 64-byte Ed25519 signature. */
export const COSIGNATURE_SIGNATURE_BYTES = 72;
/** "It MUST NOT exceed 2^63 - 1." */
const MAX_TIMESTAMP = 2n ** 63n - 1n;

export function cosignatureMessage(timestamp: number, checkpointText: Uint8Array | string): Buffer {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new RangeError(`invalid cosignature timestamp ${timestamp}`);
  return Buffer.concat([Buffer.from(`${COSIGNATURE_HEADER}\ntime ${timestamp}\n`, 'utf8'), Buffer.from(checkpointText)]);
}

/** The timestamp of a timestamped_signature, or undefined when it cannot be one (length, range). */
export function readCosignatureTimestamp(signature: Uint8Array): number | undefined {
  if (signature.length < 8) return undefined;
  const value = Buffer.from(signature.buffer, signature.byteOffset, 8).readBigUInt64BE(0);
  if (value > MAX_TIMESTAMP || value > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return Number(value);
}

export function encodeCosignature(timestamp: number, ed25519Signature: Uint8Array): Buffer {
  const out = Buffer.alloc(COSIGNATURE_SIGNATURE_BYTES);
  out.writeBigUInt64BE(BigInt(timestamp), 0);
  Buffer.from(ed25519Signature).copy(out, 8);
  return out;
}
