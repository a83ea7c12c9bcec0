import { sql } from 'drizzle-orm';
import {
  bigint,
  customType,
  date,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  serial,
  smallint,
  text,
  timestamp,
  uuid,
  varchar,
} from 'drizzle-orm/pg-core';

const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });

/**
 * Analytics table: the reference columns (user_id, device_type, masked_ip, masked_device_id,
 * locale, app_version, create_date) plus what correctness needs. `app_version` is text:
 * "0.60" and "0.6.0" are different releases and must stay different.
 *
 * PARTITIONED BY RANGE (create_date), one partition per month plus a DEFAULT partition
 * (migration 0007; drizzle cannot declare partitioning, so the SQL migration is the source).
 * Partitions are prepared ahead and dropped past retention by `npm run maintenance`.
 */
export const userLogins = pgTable(
  'user_logins',
  {
    // SQS message id: with create_date (from the same message's SentTimestamp) a redelivered
    // message hits the key in the same partition and is not stored twice.
    messageId: varchar('message_id', { length: 128 }).notNull(),
    userId: varchar('user_id', { length: 128 }).notNull(),
    deviceType: varchar('device_type', { length: 32 }).notNull(),
    // The columns hold TOKENS (ip_v1_…, device_id_v1_…: keyed HMACs, the originals are in
    // pii_vault), not partly hidden values ("masked" in policy/mask.ts and `redaction: 'masked'`
    // means that). The column names are the analysts' contract (the mission's reference schema)
    // and stay; code names them for what they hold: ipToken, deviceIdToken.
    ipToken: varchar('masked_ip', { length: 256 }).notNull(),
    deviceIdToken: varchar('masked_device_id', { length: 256 }).notNull(),
    locale: varchar('locale', { length: 32 }),
    appVersion: varchar('app_version', { length: 32 }).notNull(),
    appVersionMajor: integer('app_version_major'),
    appVersionMinor: integer('app_version_minor'),
    appVersionPatch: integer('app_version_patch'),
    // Date the event was sent (SQS SentTimestamp, UTC): a replay keeps the event's date.
    createDate: date('create_date').notNull(),
    sentAt: timestamp('sent_at', { withTimezone: true }).notNull(),
    ingestedAt: timestamp('ingested_at', { withTimezone: true }).notNull().defaultNow(),
    tokenKeyVersion: smallint('token_key_version').notNull(),
    // HMAC over the row's identity and token columns (lib/crypto/login-row-mac.ts), keyed from the
    // token key of row_mac_key_version; both NULL on rows ingested before row authentication.
    rowMac: bytea('row_mac'),
    rowMacKeyVersion: smallint('row_mac_key_version'),
  },
  (t) => [
    primaryKey({ name: 'user_logins_pkey', columns: [t.messageId, t.createDate] }),
    index('user_logins_masked_ip_idx').on(t.ipToken),
    index('user_logins_masked_device_id_idx').on(t.deviceIdToken),
    index('user_logins_create_date_idx').on(t.createDate),
    // Requests about one person (access, erasure) arrive with a user_id.
    index('user_logins_user_id_idx').on(t.userId),
  ],
);

/** Tokens of dropped partitions whose vault values maintenance has yet to check and shred (resumable). */
export const retentionShredCandidates = pgTable('retention_shred_candidates', {
  token: varchar('token', { length: 256 }).primaryKey(),
  addedAt: timestamp('added_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Wrapped data-encryption keys for vault values and quarantined bodies. */
export const dataKeys = pgTable('data_keys', {
  id: serial('id').primaryKey(),
  purpose: varchar('purpose', { length: 32 }).notNull(),
  wrappedKey: bytea('wrapped_key').notNull(),
  // Which KEK (KMS key ARN or local keyring id) wrapped it; rotate-kek rewrites both.
  kekId: varchar('kek_id', { length: 2048 }).notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  rewrappedAt: timestamp('rewrapped_at', { withTimezone: true }),
});

/** Wrapped HMAC token keys, one row per version. */
export const tokenKeys = pgTable('token_keys', {
  version: smallint('version').primaryKey(),
  wrappedKey: bytea('wrapped_key').notNull(),
  kekId: varchar('kek_id', { length: 2048 }).notNull(),
  // 'active' tokenises new data; 'pending' is being rolled out by rotate-token-key; 'retired' is kept for audit.
  state: varchar('state', { length: 16 }).notNull().default('active'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  rewrappedAt: timestamp('rewrapped_at', { withTimezone: true }),
});

/** One row per distinct (field, value): the only place originals exist, and only encrypted. */
export const piiVault = pgTable('pii_vault', {
  token: varchar('token', { length: 256 }).primaryKey(),
  field: varchar('field', { length: 16 }).notNull(),
  // AES-256-GCM: nonce | ciphertext | tag, with the token bound as additional data.
  ciphertext: bytea('ciphertext').notNull(),
  dataKeyId: integer('data_key_id')
    .notNull()
    .references(() => dataKeys.id),
  tokenKeyVersion: smallint('token_key_version').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Messages that could not be stored, with machine-readable reasons. The body is encrypted: it may hold PII. */
export const quarantine = pgTable(
  'quarantine',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    messageId: varchar('message_id', { length: 128 }).notNull().unique(),
    // [{ code, path? }]: codes and field names only, never values.
    reasons: jsonb('reasons').$type<QuarantineReason[]>().notNull(),
    bodyCiphertext: bytea('body_ciphertext').notNull(),
    dataKeyId: integer('data_key_id')
      .notNull()
      .references(() => dataKeys.id),
    bodyBytes: integer('body_bytes').notNull(),
    sentAt: timestamp('sent_at', { withTimezone: true }),
    receiveCount: integer('receive_count'),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('quarantine_received_at_idx').on(t.receivedAt)],
);

export interface QuarantineReason {
  code: string;
  path?: string;
}

/**
 * Append-only, hash-chained audit log of every reveal-api attempt. `seq` is the chain
 * order; hash = SHA-256(prev_hash || canonical row content). UPDATE/DELETE/TRUNCATE are
 * refused by triggers (see the roles migration).
 */
export const auditLog = pgTable(
  'audit_log',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey(),
    occurredAt: timestamp('occurred_at', { withTimezone: true, mode: 'string' }).notNull(),
    action: varchar('action', { length: 32 }).notNull(),
    actor: varchar('actor', { length: 256 }),
    roles: text('roles').array().notNull().default(sql`'{}'::text[]`),
    clientAddress: varchar('client_address', { length: 64 }),
    requestId: varchar('request_id', { length: 128 }),
    purpose: text('purpose'),
    ticket: varchar('ticket', { length: 256 }),
    tokens: text('tokens').array().notNull().default(sql`'{}'::text[]`),
    fieldCounts: jsonb('field_counts').$type<Record<string, number>>().notNull().default({}),
    outcome: varchar('outcome', { length: 32 }).notNull(),
    reason: text('reason'),
    prevHash: bytea('prev_hash'),
    hash: bytea('hash').notNull(),
  },
  (t) => [
    index('audit_log_actor_idx').on(t.actor, t.seq),
    index('audit_log_occurred_at_idx').on(t.occurredAt),
    // "Which attempts named this token": GIN over 64-bit hashes of the tokens (function
    // audit_token_keys, migration 0003), not the ~50-byte token texts. Every audit insert
    // maintains it while holding the chain lock; the smaller keys cut that time and its
    // stalls (bench:reveal). Queries recheck `tokens` itself, so a hash collision costs a row
    // read, never a wrong answer. fastupdate off: the pending list otherwise gets merged by
    // whichever audit insert fills it, a 100+ ms stall under the chain lock.
    index('audit_log_token_keys_idx')
      .using('gin', sql`audit_token_keys(${t.tokens})`)
      .with({ fastupdate: false }),
    // Collection proves a reveal request from the rows of the chain about it (migration 0009).
    index('audit_log_request_steps_idx')
      .on(t.requestId)
      .where(sql`${t.action} IN ('reveal.request', 'approval.approve', 'approval.deny', 'reveal.collect', 'reveal.expire')`),
  ],
);

/**
 * Signed checkpoints of the audit chain's head (docs/audit-format.md): `body` is the exact
 * JCS text that was signed, `signature` the DER ECDSA P-256 signature. Append-only (triggers,
 * migration 0005); the copies outside PostgreSQL are the ones that hold against its owner.
 */
export const auditCheckpoints = pgTable('audit_checkpoints', {
  idx: bigint('idx', { mode: 'number' }).primaryKey(),
  seq: bigint('seq', { mode: 'number' }).notNull(),
  /** v1 JSON checkpoints (no longer written). */
  body: text('body'),
  signature: bytea('signature'),
  recordedAt: timestamp('recorded_at', { withTimezone: true }).notNull().defaultNow(),
  /** Signed-note checkpoints (migration 0013): the note with its cosignatures, what it signs, when. */
  note: text('note'),
  treeSize: bigint('tree_size', { mode: 'number' }),
  rootHash: bytea('root_hash'),
  signedAt: text('signed_at'),
  proofFromSize: bigint('proof_from_size', { mode: 'number' }),
  consistencyProof: bytea('consistency_proof').array(),
});

/**
 * The audit log as an RFC 9162 Merkle tree (migration 0011, docs/audit-format.md §2): one row
 * per complete subtree, (level, idx) covering leaves [idx·2^level, (idx+1)·2^level), leaf i
 * being audit_log row seq i + 1. Written once, in the transaction of the audit row that
 * completes it; append-only (triggers).
 */
export const auditTreeNodes = pgTable(
  'audit_tree_nodes',
  {
    level: smallint('level').notNull(),
    idx: bigint('idx', { mode: 'number' }).notNull(),
    hash: bytea('hash').notNull(),
  },
  (t) => [primaryKey({ columns: [t.level, t.idx], name: 'audit_tree_nodes_pkey' })],
);

/**
 * Values revealed per actor in the current window of each budget (minute, hour, day,
 * break_glass). One row per actor and budget, overwritten when a new window starts; written
 * only under the audit chain lock, in the transaction of the audit row recording the reveal.
 */
export const revealBudgetUsage = pgTable(
  'reveal_budget_usage',
  {
    actor: varchar('actor', { length: 256 }).notNull(),
    budget: varchar('budget', { length: 16 }).notNull(),
    windowStart: timestamp('window_start', { withTimezone: true }).notNull(),
    used: integer('used').notNull(),
  },
  (t) => [primaryKey({ columns: [t.actor, t.budget], name: 'reveal_budget_usage_pkey' })],
);

/**
 * Counts of repeated refusals per source and window, stored about once a second until the
 * window's summary audit row is written (migration 0008): what a crash of the replica that
 * counted them would otherwise lose.
 */
export const refusalWindows = pgTable(
  'refusal_windows',
  {
    id: uuid('id').primaryKey(),
    source: text('source').notNull(),
    code: varchar('code', { length: 64 }).notNull(),
    windowStart: timestamp('window_start', { withTimezone: true }).notNull(),
    windowEnd: timestamp('window_end', { withTimezone: true }).notNull(),
    refusals: integer('refusals').notNull(),
    bytes: bigint('bytes', { mode: 'number' }).notNull(),
    summary: jsonb('summary').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('refusal_windows_updated_at_idx').on(t.updatedAt)],
);

/** Reveal requests waiting for (or done with) four-eyes approval. Tokens only, never values. */
export const revealRequests = pgTable(
  'reveal_requests',
  {
    id: uuid('id').primaryKey(),
    requester: varchar('requester', { length: 256 }).notNull(),
    roles: text('roles').array().notNull(),
    purpose: text('purpose').notNull(),
    ticket: varchar('ticket', { length: 256 }),
    tokens: text('tokens').array().notNull(),
    fieldCounts: jsonb('field_counts').$type<Record<string, number>>().notNull(),
    approvalsRequired: smallint('approvals_required').notNull(),
    approvals: jsonb('approvals').$type<{ approver: string; reason: string; at: string }[]>().notNull().default([]),
    // pending | approved | denied | collected | expired
    status: varchar('status', { length: 16 }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    decidedAt: timestamp('decided_at', { withTimezone: true }),
    decidedBy: varchar('decided_by', { length: 256 }),
    decisionReason: text('decision_reason'),
    collectedAt: timestamp('collected_at', { withTimezone: true }),
  },
  (t) => [index('reveal_requests_status_idx').on(t.status, t.expiresAt), index('reveal_requests_requester_idx').on(t.requester, t.createdAt)],
);
