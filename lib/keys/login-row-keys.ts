import type pg from 'pg';
import { LoginRowMac, type LoginRowFields } from '../crypto/login-row-mac.js';
import type { KeyProvider } from './key-provider.js';

const PURPOSE = 'token-key' as const;

/** A user_logins row as read back for checking (person_logins, rotation): the covered columns as stored, and the tag. */
export interface StoredLoginRow {
  message_id: string;
  user_id: string;
  /** YYYY-MM-DD (to_char: independent of DateStyle). */
  create_date: string;
  /** Milliseconds since the epoch as exact numeric text: a fractional part means sent_at was edited. */
  sent_at_ms: string;
  device_type: string;
  locale: string | null;
  app_version: string;
  masked_ip: string;
  masked_device_id: string;
  row_mac: Buffer | null;
  row_mac_key_version: number | null;
}

/** Why a row's tag does not hold. */
export type RowAuthenticationFailure = 'tag_mismatch' | 'unknown_key_version' | 'incomplete_tag';

export type RowAuthentication =
  | { status: 'verified'; keyVersion: number }
  /** Written before row authentication existed (both columns NULL): served, marked as such. */
  | { status: 'unauthenticated' }
  | { status: 'failed'; reason: RowAuthenticationFailure };

export const UNAUTHENTICATED_NOTE = 'unauthenticated: ingested before row authentication';

/**
 * Checks user_logins row tags (lib/crypto/login-row-mac.ts). The MAC key of each token key
 * version is unwrapped through the key provider on first use and kept; the database holds only
 * the wrapped token keys, so its owner cannot compute a tag. Reads token_keys (the reveal_api
 * role may). A KMS failure rejects (the caller answers 503), it never turns into "failed".
 */
export class LoginRowAuthenticator {
  private readonly macs = new Map<number, Promise<LoginRowMac | undefined>>();

  constructor(
    private readonly pool: Pick<pg.Pool, 'query'>,
    private readonly provider: KeyProvider,
  ) {}

  /** Unwraps every token key version not unwrapped yet (so a later check needs no KMS call). */
  async loadAll(): Promise<void> {
    const { rows } = await this.pool.query<{ version: number }>('SELECT version FROM token_keys ORDER BY version');
    await Promise.all(rows.map((row) => this.macFor(row.version)));
  }

  async check(row: StoredLoginRow): Promise<RowAuthentication> {
    if (row.row_mac === null && row.row_mac_key_version === null) return { status: 'unauthenticated' };
    if (row.row_mac === null || row.row_mac_key_version === null) return { status: 'failed', reason: 'incomplete_tag' };
    const mac = await this.macFor(row.row_mac_key_version);
    if (mac === undefined) return { status: 'failed', reason: 'unknown_key_version' };
    const fields = toFields(row);
    return fields !== undefined && mac.verify(fields, row.row_mac) ? { status: 'verified', keyVersion: mac.keyVersion } : { status: 'failed', reason: 'tag_mismatch' };
  }

  async checkAll(rows: readonly StoredLoginRow[]): Promise<RowAuthentication[]> {
    return Promise.all(rows.map((row) => this.check(row)));
  }

  /** The MAC of a version; undefined when no such token key exists (a forged version). Misses are not cached. */
  private macFor(version: number): Promise<LoginRowMac | undefined> {
    let mac = this.macs.get(version);
    if (mac === undefined) {
      mac = this.unwrap(version);
      this.macs.set(version, mac);
      // Neither a failure (KMS down) nor an unknown version is remembered: the next call asks again.
      mac.then(
        (found) => {
          if (found === undefined) this.macs.delete(version);
        },
        () => this.macs.delete(version),
      );
    }
    return mac;
  }

  private async unwrap(version: number): Promise<LoginRowMac | undefined> {
    const { rows } = await this.pool.query<{ wrapped_key: Buffer; kek_id: string }>('SELECT wrapped_key, kek_id FROM token_keys WHERE version = $1', [version]);
    const row = rows[0];
    if (row === undefined) return undefined;
    const key = await this.provider.decryptDataKey({ wrapped: row.wrapped_key, kekId: row.kek_id }, PURPOSE);
    try {
      return new LoginRowMac(key, version);
    } finally {
      key.fill(0);
    }
  }
}

const WHOLE_MILLISECONDS = /^(\d{1,15})(?:\.0*)?$/;

/** The fields as the ingestor tagged them; undefined when sent_at is not a whole millisecond (not what the ingestor writes). */
export function toFields(row: StoredLoginRow): LoginRowFields | undefined {
  const ms = WHOLE_MILLISECONDS.exec(row.sent_at_ms)?.[1];
  if (ms === undefined) return undefined;
  return {
    messageId: row.message_id,
    userId: row.user_id,
    createDate: row.create_date,
    sentAtMs: Number(ms),
    deviceType: row.device_type,
    locale: row.locale,
    appVersion: row.app_version,
    ipToken: row.masked_ip,
    deviceIdToken: row.masked_device_id,
  };
}
