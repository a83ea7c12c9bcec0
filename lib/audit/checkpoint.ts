import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from './jcs.js';

/** Names the format of the signed body; a verifier refuses any other. */
export const CHECKPOINT_FORMAT = 'tokenvault-audit-checkpoint/v1';

/**
 * A signed statement about the head of the audit chain. Every field is signed: the bytes
 * signed are the RFC 8785 (JCS) serialisation of this object, UTF-8 encoded.
 */
export interface CheckpointBody {
  format: typeof CHECKPOINT_FORMAT;
  /** Names the log (one deployment's audit_log): a checkpoint of another log never verifies as this one's. */
  origin: string;
  /** 1, 2, 3… with no gaps: a deleted checkpoint leaves a gap. */
  index: number;
  /** seq of the head row this checkpoint covers. */
  seq: number;
  /** That row's hash, lower-case hex. */
  head_hash: string;
  /** Rows 1..seq: equal to seq, because seq is gap-free by construction. */
  row_count: number;
  /** When it was signed, ISO-8601 UTC with milliseconds. */
  time: string;
  /** SHA-256 (hex) of the previous checkpoint's signed bytes; null for index 1. */
  prev_digest: string | null;
  /** SHA-256 (hex) of the signing key's DER SubjectPublicKeyInfo. */
  key_id: string;
  /** Where the key lives, for people: `aws-kms:<arn>` or `local-only` (older checkpoints: `local-only:<file>`). */
  signer: string;
}

export interface SignedCheckpoint {
  body: CheckpointBody;
  /** ECDSA P-256 over SHA-256 of the signed bytes, DER-encoded (what AWS KMS Sign returns). */
  signature: Buffer;
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const positive = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

export const checkpointBodySchema = z
  .object({
    format: z.literal(CHECKPOINT_FORMAT),
    origin: z.string().min(1).max(256),
    index: positive,
    seq: positive,
    head_hash: hex64,
    row_count: positive,
    time: z.string().min(1).max(64),
    prev_digest: hex64.nullable(),
    key_id: hex64,
    signer: z.string().max(512),
  })
  .strict();

/** One line of a checkpoints file, of an export, of an S3 object: `{"type":"checkpoint",...}`. */
export const checkpointLineSchema = z.object({
  type: z.literal('checkpoint'),
  checkpoint: checkpointBodySchema,
  signature: z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/),
});

export function checkpointBytes(body: CheckpointBody): Buffer {
  return Buffer.from(canonicalJson(body), 'utf8');
}

export function checkpointDigest(body: CheckpointBody): string {
  return createHash('sha256').update(checkpointBytes(body)).digest('hex');
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

export function publicKeyFromPem(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError('the audit signing key must be an ECDSA P-256 public key');
  }
  return key;
}

export function verifyCheckpointSignature(checkpoint: SignedCheckpoint, publicKey: KeyObject): boolean {
  try {
    return verify('sha256', checkpointBytes(checkpoint.body), { key: publicKey, dsaEncoding: 'der' }, checkpoint.signature);
  } catch {
    return false;
  }
}

export function checkpointLine(checkpoint: SignedCheckpoint): string {
  return canonicalJson({ type: 'checkpoint', checkpoint: checkpoint.body, signature: checkpoint.signature.toString('base64') });
}

/** Parses a checkpoint line (already JSON-decoded); throws a zod error naming the bad field. */
export function parseCheckpoint(value: unknown): SignedCheckpoint {
  const line = checkpointLineSchema.parse(value);
  return { body: line.checkpoint as CheckpointBody, signature: Buffer.from(line.signature, 'base64') };
}
