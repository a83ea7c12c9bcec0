import type { Logger } from 'pino';
import type { Database } from '../../db/client.js';
import type { QuarantineReason } from '../../db/schema.js';
import type { Tokenizer } from '../../lib/crypto/tokens.js';
import { isTransient, sqlState } from '../../lib/errors.js';
import { GroupCommit } from '../../lib/group-commit.js';
import type { DataKeyRing } from '../../lib/keys/data-key-ring.js';
import type { KnownTokens } from './known-tokens.js';
import type { InboundMessage, UnknownFieldPolicy } from './message.js';
import { storeOneByOne } from './sink/fallback.js';
import { dedupeById, planBatch, sealBatch, sealCount, type PreparedBatch } from './sink/prepare.js';
import { emptyResult, tally, type SinkResult } from './sink/result.js';
import { writeBatches, type Written } from './sink/sql.js';
import { guard, StorageUnavailableError } from './sink/storage-error.js';
import { BoundedNames } from './unknown-fields.js';

export type { SinkResult } from './sink/result.js';
export { StorageUnavailableError } from './sink/storage-error.js';

export interface SinkDeps {
  database: Database;
  dataKeys: DataKeyRing;
  /** The tokenizer of the active token key; read once per batch. */
  tokenizer: () => Tokenizer;
  knownTokens: KnownTokens;
  logger?: Logger;
  /**
   * Group-commit transactions in flight at once (default 2). One keeps the database work on a
   * single backend (one core); two let PostgreSQL use a second core while the first commits.
   * Every writer inserts in the same order (table by table, rows sorted by key), so two of our
   * own transactions can wait on each other's new rows but not deadlock.
   */
  writers?: number;
  /** What to do with fields a login event does not define (default drop). */
  unknownFields?: UnknownFieldPolicy;
  /**
   * Tag every login row (default true; lib/crypto/login-row-mac.ts). Not a setting: false only
   * lets bench:ingest measure what the tag costs.
   */
  authenticateRows?: boolean;
}

export interface Sink {
  /**
   * Validates, tokenises, encrypts and stores a batch in ONE transaction. Resolves once
   * everything is committed (the caller may then delete the messages); rejects with a
   * transient TokenvaultError when nothing may be deleted (database or KMS unreachable).
   */
  write(messages: readonly InboundMessage[]): Promise<SinkResult>;
}

/** Upper bound on messages per group-commit transaction. */
const MAX_GROUP_MESSAGES = 5000;
export const DEFAULT_WRITERS = 2;

/**
 * The storage path: prepare (sink/prepare.ts: validate, tokenise, tag, seal) → group commit
 * (lib/group-commit.ts; COPY-based SQL in sink/sql.ts) → on a refused batch, message by message
 * (sink/fallback.ts).
 */
export function createSink(deps: SinkDeps): Sink {
  const { database, dataKeys, knownTokens } = deps;

  async function prepare(messages: readonly InboundMessage[], forced?: ReadonlyMap<string, QuarantineReason[]>): Promise<PreparedBatch> {
    const plan = planBatch(messages, {
      tokenizer: deps.tokenizer(),
      isStored: (token) => knownTokens.has(token),
      unknownFields: deps.unknownFields ?? 'drop',
      authenticateRows: deps.authenticateRows ?? true,
      ...(forced === undefined ? {} : { forced }),
    });
    const count = sealCount(plan);
    // One reservation per batch: encryption is then synchronous, no await per value.
    return sealBatch(plan, count > 0 ? await dataKeys.acquire(count) : undefined);
  }

  /**
   * Batches that arrive while every writer is busy share the next transaction. Since all
   * writers take row locks in one global order (logins and quarantine sorted by message id,
   * then vault sorted by token), concurrent ones may wait for each other's new vault rows
   * but cannot deadlock (a rare redelivery split could; 40P01 is transient and retried). A
   * group the database refuses for a permanent reason is retried batch by batch, so only the
   * offending batch goes on to the message-by-message path.
   */
  const groupCommit = new GroupCommit<PreparedBatch, Written>({
    commit: (batches) => writeBatches(database.pool, batches),
    writers: deps.writers ?? DEFAULT_WRITERS,
    maxWeight: MAX_GROUP_MESSAGES,
    weight: (batch) => batch.logins.length + batch.quarantine.length,
    retryAlone: (error) => !isTransient(error),
  });

  async function write(messages: readonly InboundMessage[]): Promise<SinkResult> {
    const distinct = dedupeById(messages);
    const result = emptyResult(distinct.length);
    if (distinct.length === 0) return result;
    const names = new BoundedNames();
    const store = async (batch: PreparedBatch): Promise<void> => {
      tally(result, batch, await groupCommit.submit(batch), names);
      // Committed: these tokens' vault rows exist, later batches need not encrypt them again.
      for (const row of batch.vault) knownTokens.add(row.token);
    };

    const batch = await guard(() => prepare(distinct));
    // Two tokens per login; those without a vault row were cached or repeated within the batch.
    result.vaultKnown = batch.logins.length * 2 - batch.vault.length;
    try {
      await store(batch);
      return result;
    } catch (error) {
      if (isTransient(error)) throw new StorageUnavailableError(error);
      deps.logger?.warn({ sqlstate: sqlState(error), messages: distinct.length }, 'batch rejected by the database; retrying message by message');
    }
    // A constraint the validator missed: find the offending message(s) and quarantine only them.
    result.splitAfterError = true;
    await storeOneByOne(distinct, { prepare, store, ...(deps.logger === undefined ? {} : { logger: deps.logger }) });
    return result;
  }

  return { write };
}
