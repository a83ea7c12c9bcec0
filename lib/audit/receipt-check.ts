import { z } from 'zod';
import { auditRowJsonSchema } from './audit-row.js';
import { canonicalize, chainHash, rowFromJson } from './chain.js';
import type { CheckpointRecord } from './checkpoint-record.js';
import { leafHash } from './merkle/hash.js';
import { MerkleProofError, assertInclusion } from './merkle/verify.js';
import { NoteError } from './note/errors.js';
import { decodeBase64Strict } from './note/signed-note.js';
import { openCheckpoint } from './note/tlog-checkpoint.js';
import { SignatureType, type NoteVerifier } from './note/vkey.js';

const base64 = z.string().min(1);

/** GET /audit/entries/{seq} (and each entry of POST /persons/access): an entry with its inclusion proof. */
const receiptSchema = z.object({
  seq: z.number().int().min(1),
  entry: auditRowJsonSchema,
  canonical: z.string().optional(),
  leaf_hash: base64.optional(),
  inclusion: z.object({ tree_size: z.number().int().min(1), leaf_index: z.number().int().min(0), proof: z.array(base64).max(64), root: base64.optional() }).nullable(),
  checkpoint: z.object({ index: z.number().int().min(1), tree_size: z.number().int().min(1), note: z.string().optional() }).nullable().optional(),
  note: z.string().optional(),
});

export type Receipt = z.infer<typeof receiptSchema>;

export class ReceiptFormatError extends Error {}

export function parseReceipt(value: unknown): Receipt {
  const parsed = receiptSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ReceiptFormatError(`not an audit entry receipt (GET /audit/entries/{seq})${issue === undefined ? '' : `: ${issue.path.join('.')}: ${issue.message}`}`);
  }
  return parsed.data;
}

export interface ReceiptVerdict {
  /** checked: the entry is in a signed checkpoint; uncheckable: no checkpoint to check it against (yet); broken: findings. */
  status: 'intact' | 'uncheckable' | 'broken';
  findings: string[];
  message: string;
}

export interface ReceiptKeys {
  logKeys: readonly NoteVerifier[];
  witnessKeys: readonly NoteVerifier[];
  quorum: number;
}

/**
 * Checks one entry with its receipt, without the rest of the log: its content is the leaf
 * (canonical bytes, leaf hash), its chain hash matches, and the inclusion proof leads from that
 * leaf to the root of a checkpoint SIGNED by the log (and cosigned by a quorum of witnesses when
 * asked) — a checkpoint taken from the published ones, never the root the receipt itself states.
 */
export function verifyReceipt(receipt: Receipt, published: readonly CheckpointRecord[], keys: ReceiptKeys): ReceiptVerdict {
  const findings: string[] = [];
  const row = rowFromJson(receipt.entry);
  const seq = receipt.seq;
  if (row.seq !== seq) findings.push(`the receipt is for entry ${seq} but holds entry ${row.seq}`);
  const canonical = canonicalize(row);
  if (receipt.canonical !== undefined && receipt.canonical !== canonical) findings.push('its canonical bytes are not those of the entry it shows');
  if (!chainHash(row).equals(row.hash)) findings.push('the entry\'s content does not match its hash (edited)');
  const leaf = leafHash(Buffer.from(canonical, 'utf8'));
  if (receipt.leaf_hash !== undefined && !leaf.equals(decodeBase64Strict(receipt.leaf_hash) ?? Buffer.alloc(0))) findings.push('its leaf hash is not that of the entry it shows');

  const inclusion = receipt.inclusion;
  if (inclusion === null) {
    return verdict(findings, 'uncheckable', `entry ${seq} is not covered by a signed checkpoint yet${receipt.note === undefined ? '' : ` (${receipt.note})`}: fetch its receipt again after the next checkpoint`);
  }
  if (inclusion.leaf_index !== seq - 1) findings.push(`its proof is for leaf ${inclusion.leaf_index}, not ${seq - 1} (entry ${seq})`);
  const size = inclusion.tree_size;
  const candidates = published.filter((record): record is Extract<CheckpointRecord, { kind: 'note' }> => record.kind === 'note');
  const wanted = receipt.checkpoint?.index;
  const notes = [
    ...candidates.filter((record) => record.index === wanted).map((record) => ({ name: `checkpoint ${record.index}`, note: record.note })),
    ...candidates.filter((record) => record.index !== wanted).map((record) => ({ name: `checkpoint ${record.index}`, note: record.note })),
    ...(receipt.checkpoint?.note === undefined ? [] : [{ name: 'the checkpoint the receipt carries', note: receipt.checkpoint.note }]),
  ];
  let matched: { name: string; root: Buffer; cosignedBy: string[] } | undefined;
  for (const candidate of notes) {
    try {
      const opened = openCheckpoint(candidate.note, [...keys.logKeys, ...keys.witnessKeys]);
      if (opened.checkpoint.size !== size) continue;
      if (!opened.verified.some((signature) => signature.verifier.type !== SignatureType.CosignatureV1)) {
        findings.push(`${candidate.name} carries no signature of the log's key`);
        continue;
      }
      const cosignedBy = [...new Set(opened.verified.filter((signature) => signature.verifier.type === SignatureType.CosignatureV1).map((signature) => signature.name))];
      matched = { name: candidate.name, root: opened.checkpoint.rootHash, cosignedBy };
      break;
    } catch (error) {
      if (!(error instanceof NoteError)) throw error;
      // Another log's checkpoint, or one that does not verify: not the one to check against.
    }
  }
  if (matched === undefined) {
    return verdict(
      findings,
      'uncheckable',
      `none of the checkpoints given is a signed checkpoint of ${size} entries${wanted === undefined ? '' : ` (index ${wanted})`}: pass the published checkpoints file that holds it (--checkpoints)`,
    );
  }
  if (matched.cosignedBy.length < keys.quorum) {
    findings.push(`${matched.name} has ${matched.cosignedBy.length} of the ${keys.quorum} witness cosignatures required`);
  }
  try {
    assertInclusion(seq - 1, size, leaf, inclusion.proof.map((hash) => decodeBase64Strict(hash) ?? Buffer.alloc(0)), matched.root);
  } catch (error) {
    if (!(error instanceof MerkleProofError || error instanceof RangeError)) throw error;
    findings.push(`its inclusion proof does not lead to the root ${matched.name} signed (${error.message}): the entry or the log was altered`);
  }
  if (inclusion.root !== undefined && !matched.root.equals(decodeBase64Strict(inclusion.root) ?? Buffer.alloc(0))) {
    findings.push(`the root the receipt states is not the one ${matched.name} signed`);
  }
  const cosigned = matched.cosignedBy.length === 0 ? '' : `, cosigned by ${matched.cosignedBy.join(', ')}`;
  return verdict(
    findings,
    'intact',
    `audit entry ${seq} intact: ${row.action} by ${row.actor ?? 'an unauthenticated caller'} at ${row.occurredAt}, outcome ${row.outcome}; included in ${matched.name} (${size} entries${cosigned}), proof of ${inclusion.proof.length} hashes`,
  );
}

function verdict(findings: string[], status: 'intact' | 'uncheckable', message: string): ReceiptVerdict {
  if (findings.length > 0) {
    return { status: 'broken', findings, message: [`audit entry receipt BROKEN: ${findings[0]}`, ...findings.slice(1).map((finding) => `  also BROKEN: ${finding}`)].join('\n') };
  }
  return { status, findings, message };
}
