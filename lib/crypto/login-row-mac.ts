import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/**
 * Row authentication for user_logins: an HMAC-SHA256 over a login's identity and its token
 * columns, keyed by a key derived (HKDF, own label) from the token key of one version. The
 * database holds that key only wrapped by the KMS, so its owner can change a row but cannot
 * make a new tag for it: a re-pointed masked_ip, a login moved to another user_id or another
 * day no longer verifies. Written by the ingestor with each row, recomputed by token-key
 * rotation when it rewrites the tokens, checked before /persons/access serves a row or
 * /persons/erase acts on one. ingested_at (set by the database) and the derived
 * app_version_major/minor/patch columns are not covered.
 */
export interface LoginRowFields {
  messageId: string;
  userId: string;
  /** YYYY-MM-DD (UTC day of sentAt). */
  createDate: string;
  /** SQS SentTimestamp, milliseconds since the epoch. */
  sentAtMs: number;
  deviceType: string;
  locale: string | null;
  appVersion: string;
  ipToken: string;
  deviceIdToken: string;
}

/** Tag length in bytes (full SHA-256 output). */
export const LOGIN_ROW_MAC_BYTES = 32;

const DOMAIN = 'tokenvault/user_logins/row/v1';

export type LoginRowCheck = 'verified' | 'failed' | 'unauthenticated';

export class LoginRowMac {
  private readonly key: Buffer;

  /** `tokenKey`: the 32-byte token key of `keyVersion` (the same material the Tokenizer derives from). */
  constructor(
    tokenKey: Buffer,
    readonly keyVersion: number,
  ) {
    if (tokenKey.length !== 32) throw new Error('token key must be 32 bytes');
    this.key = Buffer.from(hkdfSync('sha256', tokenKey, Buffer.alloc(0), 'tokenvault/user_logins/row-mac', 32));
  }

  tag(row: LoginRowFields): Buffer {
    return createHmac('sha256', this.key).update(encodeLoginRow(row), 'utf8').digest();
  }

  /** Constant-time comparison; a tag of the wrong length fails. */
  verify(row: LoginRowFields, tag: Buffer): boolean {
    return tag.length === LOGIN_ROW_MAC_BYTES && timingSafeEqual(this.tag(row), tag);
  }
}

/**
 * One string per row, injective: each field as `<length>:<value>` (length in UTF-16 code units,
 * which the reader of the same string counts the same way), null as `-`, after a domain label.
 * Values are well-formed Unicode (the validator rejects lone surrogates), so the UTF-8 the
 * HMAC sees is injective too.
 */
export function encodeLoginRow(row: LoginRowFields): string {
  const field = (value: string | null): string => (value === null ? '-' : `${value.length}:${value}`);
  return (
    DOMAIN +
    field(row.messageId) +
    field(row.userId) +
    field(row.createDate) +
    field(String(row.sentAtMs)) +
    field(row.deviceType) +
    field(row.locale) +
    field(row.appVersion) +
    field(row.ipToken) +
    field(row.deviceIdToken)
  );
}

/** The UTC calendar day of a timestamp, as PostgreSQL prints a date (create_date). */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
