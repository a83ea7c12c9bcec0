import { readFile } from 'node:fs/promises';
import { publicKeyFromPem } from './checkpoint.js';
import { readExportFile } from './export-format.js';
import { recordOrigin, type CheckpointRecord } from './checkpoint-record.js';
import { ecdsaVerifier, parseVerifierKey, SignatureType, type NoteVerifier } from './note/vkey.js';
import { parseReceipt, verifyReceipt, type Receipt, type ReceiptVerdict } from './receipt-check.js';
import { CheckpointedLogVerifier, type AuditVerdict } from './checkpointed-log-verifier.js';

export interface OfflineInputs {
  /** NDJSON export: its start line, rows, and the database's copy of the checkpoints. */
  exportFile: string;
  /** Checkpoints published outside the database (the file sink, S3 objects concatenated). */
  checkpointsFile?: string | undefined;
  /** PEM of the audit signing key's public key. */
  publicKeyFile?: string | undefined;
  /** Files holding more vkeys of the log (its Ed25519 key). */
  logKeyFiles?: string[] | undefined;
  /** Files holding witness vkeys (one per file, or one per line). */
  witnessKeyFiles?: string[] | undefined;
  /** Cosignatures of distinct witnesses every checkpoint needs. */
  quorum?: number | undefined;
  origin?: string | undefined;
  /** Tolerance between the service's clock and the exporter's (default 300 s). */
  clockSkewSeconds?: number | undefined;
}

export interface OfflineResult {
  verdict: AuditVerdict;
  /** Where the checkpoints came from, for the summary. */
  checkpointSource: string;
}

export class OfflineInputError extends Error {}

/**
 * Verifies an export with no database and no secret: the rows' chain and Merkle tree, every
 * checkpoint's signatures, cosignatures and links, and that each checkpoint's head or root is
 * what the rows reproduce. Checkpoints come from --checkpoints when given (the copy the database
 * owner cannot rewrite), and the export's own copy (the database's at export time) is compared
 * with it; otherwise the export's copy alone (it still proves signatures, but its newest entries
 * could have been removed together with the rows they cover).
 */
export async function verifyOffline(inputs: OfflineInputs): Promise<OfflineResult> {
  const publicKey = inputs.publicKeyFile === undefined ? undefined : publicKeyFromPem(await readText(inputs.publicKeyFile, '--public-key'));
  const { logKeys, witnessKeys } = await readVerifierKeys(inputs);

  let exportStartedAt: number | undefined;
  const exportRecords = [];
  for await (const line of readExportFile(inputs.exportFile)) {
    if (line.type === 'export_start') {
      const started = Date.parse(line.start.startedAt);
      // A resumed export holds several parts: the first one's start is when all older rows existed.
      if (!Number.isNaN(started) && (exportStartedAt === undefined || started < exportStartedAt)) exportStartedAt = started;
    } else if (line.type === 'checkpoint') exportRecords.push(line.record);
  }
  const verifier = new CheckpointedLogVerifier({
    publicKey,
    logKeys,
    witnessKeys,
    quorum: inputs.quorum,
    origin: inputs.origin,
    mode: 'export',
    exportStartedAt,
    clockSkewMs: (inputs.clockSkewSeconds ?? 300) * 1000,
  });

  let checkpointSource = `${inputs.exportFile} (the database's copy)`;
  let published = 0;
  if (inputs.checkpointsFile !== undefined) {
    checkpointSource = inputs.checkpointsFile;
    try {
      for await (const line of readExportFile(inputs.checkpointsFile)) {
        if (line.type === 'checkpoint') {
          verifier.addCheckpoint(line.record);
          published += 1;
        }
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      // The sink creates the file with the first checkpoint: before it, there is simply none.
      checkpointSource = `${inputs.checkpointsFile}, which does not exist yet: no signed checkpoint yet (the first is published within one checkpoint interval of the first audit row)`;
    }
  }
  for (const record of exportRecords) verifier.addCheckpoint(record, { fromExport: true });
  if (inputs.checkpointsFile !== undefined && published === 0 && exportRecords.length === 0 && !checkpointSource.includes('does not exist')) {
    checkpointSource = `${inputs.checkpointsFile} (empty: no signed checkpoint yet)`;
  }

  for await (const line of readExportFile(inputs.exportFile)) {
    if (line.type === 'row') verifier.pushRow(line.row);
  }
  return { verdict: verifier.verdict(), checkpointSource };
}

/** The log's extra keys and the witnesses' keys from their files; the quorum must be reachable. */
export async function readVerifierKeys(inputs: Pick<OfflineInputs, 'logKeyFiles' | 'witnessKeyFiles' | 'quorum'>): Promise<{ logKeys: NoteVerifier[]; witnessKeys: NoteVerifier[] }> {
  const logKeys = await readVkeys(inputs.logKeyFiles ?? [], '--log-key', (verifier) => verifier.type !== SignatureType.CosignatureV1);
  const witnessKeys = await readVkeys(inputs.witnessKeyFiles ?? [], '--witness-key', (verifier) => verifier.type === SignatureType.CosignatureV1);
  const names = new Set(witnessKeys.map((verifier) => verifier.name));
  if ((inputs.quorum ?? 0) > names.size) {
    throw new OfflineInputError(`--witness-quorum ${inputs.quorum} needs at least that many witnesses' keys (--witness-key; ${names.size} given)`);
  }
  return { logKeys, witnessKeys };
}

async function readText(file: string, option: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new OfflineInputError(`${option} ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
}

/** vkeys, one per non-empty line, from each file; `accept` names the kind the option takes. */
async function readVkeys(files: string[], option: string, accept: (verifier: NoteVerifier) => boolean): Promise<NoteVerifier[]> {
  const verifiers: NoteVerifier[] = [];
  for (const file of files) {
    const lines = (await readText(file, option)).split('\n').map((line) => line.trim()).filter((line) => line.length > 0 && !line.startsWith('#'));
    if (lines.length === 0) throw new OfflineInputError(`${option} ${file}: no verifier key in it (expected a line name+keyid+base64key)`);
    for (const line of lines) {
      let verifier: NoteVerifier;
      try {
        verifier = parseVerifierKey(line);
      } catch (error) {
        throw new OfflineInputError(`${option} ${file}: ${(error as Error).message}`);
      }
      if (!accept(verifier)) throw new OfflineInputError(`${option} ${file}: ${verifier.name} is not the right kind of key for ${option} (type 0x${verifier.type.toString(16).padStart(2, '0')})`);
      if (!verifiers.some((known) => known.verifierKey === verifier.verifierKey)) verifiers.push(verifier);
    }
  }
  return verifiers;
}

export interface EntryInputs extends Omit<OfflineInputs, 'exportFile' | 'clockSkewSeconds'> {
  /** A receipt: GET /audit/entries/{seq} saved as JSON. */
  entryFile: string;
}

/** Checks one entry's receipt against the published checkpoints and the log's public key (no database, no export). */
export async function verifyEntryOffline(inputs: EntryInputs): Promise<ReceiptVerdict> {
  let receipt: Receipt;
  try {
    receipt = parseReceipt(JSON.parse(await readText(inputs.entryFile, '--entry')));
  } catch (error) {
    if (error instanceof OfflineInputError) throw error;
    throw new OfflineInputError(`--entry ${inputs.entryFile}: ${error instanceof SyntaxError ? 'not JSON' : (error as Error).message}`);
  }
  const { logKeys, witnessKeys } = await readVerifierKeys(inputs);
  const records: CheckpointRecord[] = [];
  if (inputs.checkpointsFile !== undefined) {
    try {
      for await (const line of readExportFile(inputs.checkpointsFile)) if (line.type === 'checkpoint') records.push(line.record);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  const origin = inputs.origin ?? records.map(recordOrigin).find((name) => name !== undefined) ?? originOfNote(receipt.checkpoint?.note);
  const keys = [...logKeys];
  if (inputs.publicKeyFile !== undefined && origin !== undefined) {
    const publicKey = publicKeyFromPem(await readText(inputs.publicKeyFile, '--public-key'));
    keys.unshift(ecdsaVerifier(origin, publicKey.export({ type: 'spki', format: 'der' })));
  }
  return verifyReceipt(receipt, records, { logKeys: keys, witnessKeys, quorum: inputs.quorum ?? 0 });
}

function originOfNote(note: string | undefined): string | undefined {
  if (note === undefined) return undefined;
  return note.split('\n')[0] || undefined;
}
