import type { QuarantineReason } from '../../../db/schema.js';
import { sealAll } from '../../../lib/crypto/aead.js';
import type { PiiField } from '../../../lib/crypto/normalize.js';
import type { Tokenizer } from '../../../lib/crypto/tokens.js';
import type { VaultRow } from '../../../lib/crypto/vault-row.js';
import { quarantineAad, vaultAad } from '../../../lib/crypto/vault-context.js';
import { parseLoginEvent, type InboundMessage, type UnknownFieldPolicy } from '../message.js';

/**
 * Preparing a batch: everything before the database. Validation and tokenisation decide the
 * rows (planBatch); encryption seals the vault values and quarantined bodies under one data
 * key (sealBatch). Neither does I/O: the caller acquires the data key in between.
 */

export interface LoginRow {
  messageId: string;
  userId: string;
  deviceType: string;
  ipToken: string;
  deviceIdToken: string;
  locale: string | null;
  appVersion: string;
  major: number | null;
  minor: number | null;
  patch: number | null;
  sentAtMs: number;
  /** sentAtMs as ISO 8601 (UTC), as it is written. */
  sentAtIso: string;
  /** UTC day of sentAtMs (YYYY-MM-DD): the partition key, the same on every redelivery. */
  createDate: string;
  /** Row authentication tag (lib/crypto/login-row-mac.ts) under the batch's token key version; null only when disabled (bench). */
  mac: Buffer | null;
}

export interface QuarantineRow {
  messageId: string;
  reasons: QuarantineReason[];
  ciphertext: Buffer;
  bodyBytes: number;
  sentAtMs: number;
  receiveCount: number | null;
}

/** A batch ready to insert: rows only, PII already tokenised or sealed. */
export interface PreparedBatch {
  /** Field names dropped, per valid message. */
  droppedFields: string[][];
  logins: LoginRow[];
  /** Sealed under the batch's data key (dataKeyId). */
  vault: Omit<VaultRow, 'data_key_id'>[];
  quarantine: QuarantineRow[];
  dataKeyId: number;
  tokenKeyVersion: number;
}

/** A batch validated and tokenised, its plaintext still to be sealed. */
export interface BatchPlan {
  droppedFields: string[][];
  logins: LoginRow[];
  /** New vault values (one per token; none the caller already knows to be stored). */
  vault: { token: string; field: PiiField; value: string }[];
  /** Messages to quarantine, with their reasons. */
  rejected: { message: InboundMessage; reasons: QuarantineReason[] }[];
  tokenKeyVersion: number;
}

export interface PlanOptions {
  tokenizer: Tokenizer;
  /** True when the token's vault row is known to exist already (it is then not written again). */
  isStored: (token: string) => boolean;
  unknownFields: UnknownFieldPolicy;
  /** Messages to quarantine with these reasons, without parsing them (the per-message fallback). */
  forced?: ReadonlyMap<string, QuarantineReason[]>;
  /** Tag each login row (default true). Off only to measure what the tag costs (bench:ingest). */
  authenticateRows?: boolean;
}

/** Validation and tokenisation: which rows a batch becomes. */
export function planBatch(messages: readonly InboundMessage[], options: PlanOptions): BatchPlan {
  const { tokenizer } = options;
  const authenticate = options.authenticateRows ?? true;
  const plan: BatchPlan = { droppedFields: [], logins: [], vault: [], rejected: [], tokenKeyVersion: tokenizer.keyVersion };
  const pendingTokens = new Set<string>();
  const addVault = (field: PiiField, token: string, value: string): void => {
    if (pendingTokens.has(token) || options.isStored(token)) return;
    pendingTokens.add(token);
    plan.vault.push({ token, field, value });
  };

  for (const message of messages) {
    const forcedReasons = options.forced?.get(message.messageId);
    if (forcedReasons !== undefined) {
      plan.rejected.push({ message, reasons: forcedReasons });
      continue;
    }
    const parsed = parseLoginEvent(message.body, { unknownFields: options.unknownFields });
    if (!parsed.ok) {
      plan.rejected.push({ message, reasons: parsed.reasons });
      continue;
    }
    if (parsed.droppedFields.length > 0) plan.droppedFields.push(parsed.droppedFields);
    const event = parsed.event;
    const ipToken = tokenizer.tokenizeCanonical('ip', event.ip);
    const deviceIdToken = tokenizer.tokenizeCanonical('device_id', event.deviceId);
    addVault('ip', ipToken, event.ip);
    addVault('device_id', deviceIdToken, event.deviceId);
    const sentAtMs = message.sentAt.getTime();
    const sentAtIso = message.sentAt.toISOString();
    const row: LoginRow = {
      messageId: message.messageId,
      userId: event.userId,
      deviceType: event.deviceType,
      ipToken,
      deviceIdToken,
      locale: event.locale,
      appVersion: event.appVersion,
      major: event.appVersionParts?.major ?? null,
      minor: event.appVersionParts?.minor ?? null,
      patch: event.appVersionParts?.patch ?? null,
      sentAtMs,
      sentAtIso,
      createDate: sentAtIso.slice(0, 10),
      mac: null,
    };
    if (authenticate) row.mac = tokenizer.rowMac.tag(row);
    plan.logins.push(row);
  }
  return plan;
}

/** How many values sealBatch encrypts: the data-key uses to reserve. */
export function sealCount(plan: BatchPlan): number {
  return plan.vault.length + plan.rejected.length;
}

/**
 * Encrypts the plan's vault values (bound to their token) and quarantined bodies (bound to
 * their message id) under one data key; `dataKey` may be undefined only when sealCount is 0.
 */
export function sealBatch(plan: BatchPlan, dataKey: { id: number; key: Buffer } | undefined): PreparedBatch {
  const key = dataKey?.key ?? Buffer.alloc(0);
  const vaultSealed = sealAll(
    key,
    plan.vault.map(({ token, value }) => ({ plaintext: Buffer.from(value, 'utf8'), aad: vaultAad(token) })),
  );
  const vault = plan.vault.map(({ token, field }, index) => ({ token, field, ciphertext: vaultSealed[index] ?? Buffer.alloc(0) }));
  const bodies = plan.rejected.map(({ message }) => Buffer.from(message.body, 'utf8'));
  const bodiesSealed = sealAll(
    key,
    plan.rejected.map(({ message }, index) => ({ plaintext: bodies[index] ?? Buffer.alloc(0), aad: quarantineAad(message.messageId) })),
  );
  const quarantine = plan.rejected.map(({ message, reasons }, index) => ({
    messageId: message.messageId,
    reasons,
    ciphertext: bodiesSealed[index] ?? Buffer.alloc(0),
    bodyBytes: bodies[index]?.length ?? 0,
    sentAtMs: message.sentAt.getTime(),
    receiveCount: message.receiveCount ?? null,
  }));
  return {
    droppedFields: plan.droppedFields,
    logins: plan.logins,
    vault,
    quarantine,
    dataKeyId: dataKey?.id ?? 0,
    tokenKeyVersion: plan.tokenKeyVersion,
  };
}

/** The emulator (and, rarely, SQS) may hand the same message twice in one receive. */
export function dedupeById<M extends { messageId: string }>(messages: readonly M[]): M[] {
  const seen = new Set<string>();
  const distinct: M[] = [];
  for (const message of messages) {
    if (seen.has(message.messageId)) continue;
    seen.add(message.messageId);
    distinct.push(message);
  }
  return distinct;
}
