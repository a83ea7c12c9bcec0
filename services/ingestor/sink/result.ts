import { countNames, type BoundedNames } from '../unknown-fields.js';
import type { PreparedBatch } from './prepare.js';
import type { Written } from './sql.js';

export interface SinkResult {
  /** Distinct messages in the batch (the same MessageId twice counts once). */
  received: number;
  stored: number;
  /** Messages already stored or quarantined earlier (redelivery). */
  duplicates: number;
  quarantined: number;
  /** Quarantined messages by their first reason code (each message counts once). */
  reasons: Record<string, number>;
  /** New vault values this batch encrypted and wrote (ON CONFLICT skips any another replica wrote first). */
  vaultWritten: number;
  /** Vault writes skipped because the token was known to be stored already (or repeated in the batch). */
  vaultKnown: number;
  /** True when a non-transient database error made the batch go message by message. */
  splitAfterError: boolean;
  /**
   * Unknown fields dropped from stored messages: name → messages (names only, at most
   * MAX_FIELD_NAMES, then OTHER_FIELDS). Redelivered messages count again.
   */
  droppedFields: Record<string, number>;
}

export function emptyResult(received: number): SinkResult {
  return {
    received,
    stored: 0,
    duplicates: 0,
    quarantined: 0,
    reasons: {},
    vaultWritten: 0,
    vaultKnown: 0,
    splitAfterError: false,
    droppedFields: {},
  };
}

/** Adds what a committed batch wrote to the result. */
export function tally(result: SinkResult, batch: PreparedBatch, written: Written, names: BoundedNames): void {
  for (const fields of batch.droppedFields) countNames(result.droppedFields, fields, names);
  result.stored += written.stored;
  result.quarantined += written.quarantined.size;
  result.duplicates += batch.logins.length - written.stored + (batch.quarantine.length - written.quarantined.size);
  result.vaultWritten += batch.vault.length;
  for (const row of batch.quarantine) {
    const code = row.reasons[0]?.code;
    if (code !== undefined && written.quarantined.has(row.messageId)) result.reasons[code] = (result.reasons[code] ?? 0) + 1;
  }
}
