import { readFile } from 'node:fs/promises';
import { publicKeyFromPem } from './checkpoint.js';
import { readExportFile } from './export-format.js';
import { AuditLogVerifier, type AuditVerdict } from './verifier.js';

export interface OfflineInputs {
  /** NDJSON export: rows (and possibly the database's copy of the checkpoints). */
  exportFile: string;
  /** Checkpoints published outside the database (JSON-lines sink, S3 objects concatenated). */
  checkpointsFile?: string | undefined;
  /** PEM of the audit signing key's public key. */
  publicKeyFile?: string | undefined;
  origin?: string | undefined;
}

export interface OfflineResult {
  verdict: AuditVerdict;
  /** Where the checkpoints came from, for the summary. */
  checkpointSource: string;
}

/**
 * Verifies an export with no database and no secret: the rows' chain, every checkpoint's
 * signature and chain, and that each checkpoint's (seq, hash) is in the rows. Checkpoints come
 * from --checkpoints when given (the copy the database owner cannot rewrite), otherwise from
 * the export itself (the database's copy: it still proves signatures, but its newest entries
 * could have been removed together with the rows they cover).
 */
export async function verifyOffline(inputs: OfflineInputs): Promise<OfflineResult> {
  const publicKey = inputs.publicKeyFile === undefined ? undefined : publicKeyFromPem(await readFile(inputs.publicKeyFile, 'utf8'));
  const verifier = new AuditLogVerifier({ publicKey, origin: inputs.origin });
  const checkpointSource = inputs.checkpointsFile ?? `${inputs.exportFile} (the database's copy)`;
  let ok = true;
  for await (const line of readExportFile(inputs.checkpointsFile ?? inputs.exportFile)) {
    if (line.type === 'checkpoint' && !(ok = verifier.addCheckpoint(line.checkpoint))) break;
  }
  if (ok) {
    for await (const line of readExportFile(inputs.exportFile)) {
      if (line.type === 'row' && !verifier.pushRow(line.row)) break;
    }
  }
  return { verdict: verifier.verdict(), checkpointSource };
}
