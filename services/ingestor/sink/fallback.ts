import type { Logger } from 'pino';
import type { QuarantineReason } from '../../../db/schema.js';
import { describeError, isTransient, sqlState, TokenvaultError } from '../../../lib/errors.js';
import type { InboundMessage } from '../message.js';
import type { PreparedBatch } from './prepare.js';
import { guard, StorageUnavailableError } from './storage-error.js';

export interface FallbackSteps {
  /** Prepares messages; `forced` quarantines the given ones with these reasons instead of parsing them. */
  prepare: (messages: readonly InboundMessage[], forced?: ReadonlyMap<string, QuarantineReason[]>) => Promise<PreparedBatch>;
  /** Commits a prepared batch and counts it in the result. */
  store: (batch: PreparedBatch) => Promise<void>;
  logger?: Logger;
}

/**
 * After the database refused a batch for a reason the validator missed (a non-transient
 * error): stores the messages one by one, so only the offending ones are quarantined, as
 * `storage_rejected` with the SQLSTATE. A transient error still leaves everything on the queue.
 */
export async function storeOneByOne(messages: readonly InboundMessage[], steps: FallbackSteps): Promise<void> {
  for (const message of messages) {
    const single = await guard(() => steps.prepare([message]));
    try {
      await steps.store(single);
      continue;
    } catch (error) {
      if (isTransient(error)) throw new StorageUnavailableError(error);
      const code = sqlState(error);
      steps.logger?.warn({ messageId: message.messageId, sqlstate: code }, 'message rejected by the database; quarantining it');
      const reason: QuarantineReason = code === undefined ? { code: 'storage_rejected' } : { code: 'storage_rejected', path: `sqlstate:${code}` };
      const rejected = await guard(() => steps.prepare([message], new Map([[message.messageId, [reason]]])));
      try {
        await steps.store(rejected);
      } catch (quarantineError) {
        // Not even the quarantine row fits: leave the message on the queue (it ends in the DLQ).
        throw new TokenvaultError('quarantine_failed', `could not quarantine message ${message.messageId}: ${describeError(quarantineError)}`, {
          cause: quarantineError,
          transient: isTransient(quarantineError),
        });
      }
    }
  }
}
