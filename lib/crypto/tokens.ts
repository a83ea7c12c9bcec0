import { createHmac, hkdfSync } from 'node:crypto';
import { LoginRowMac } from './login-row-mac.js';
import { canonicalValue, isPiiField, type PiiField } from './normalize.js';

/**
 * Deterministic keyed tokens: `<field>_v<keyVersion>_<base64url(HMAC-SHA256)>`.
 * Each field gets its own subkey (HKDF from the token key), so the same string as an
 * ip and as a device_id gives unrelated tokens. Without the key a token reveals nothing
 * and cannot be brute-forced by enumerating the (small) input space.
 */
const TOKEN_PATTERN = /^(ip|device_id)_v([1-9][0-9]{0,8})_([A-Za-z0-9_-]{43})$/;

export interface ParsedToken {
  field: PiiField;
  keyVersion: number;
}

export function parseToken(token: string): ParsedToken | undefined {
  const match = TOKEN_PATTERN.exec(token);
  if (match?.[1] === undefined || match[2] === undefined || !isPiiField(match[1])) return undefined;
  return { field: match[1], keyVersion: Number(match[2]) };
}

export class Tokenizer {
  readonly keyVersion: number;
  /** Authenticates user_logins rows holding this version's tokens (its own HKDF label, same root). */
  readonly rowMac: LoginRowMac;
  private readonly subkeys: Record<PiiField, Buffer>;

  constructor(key: Buffer, keyVersion: number) {
    if (key.length !== 32) throw new Error('token key must be 32 bytes');
    this.keyVersion = keyVersion;
    this.subkeys = { ip: deriveSubkey(key, 'ip'), device_id: deriveSubkey(key, 'device_id') };
    this.rowMac = new LoginRowMac(key, keyVersion);
  }

  /** Token of an already canonical value (see canonicalValue). */
  tokenizeCanonical(field: PiiField, canonical: string): string {
    const mac = createHmac('sha256', this.subkeys[field]).update(canonical, 'utf8').digest('base64url');
    return `${field}_v${this.keyVersion}_${mac}`;
  }

  /** Token of a raw value, or undefined when the value is not valid for its field. */
  tokenize(field: PiiField, raw: string): string | undefined {
    const canonical = canonicalValue(field, raw);
    return canonical === undefined ? undefined : this.tokenizeCanonical(field, canonical);
  }
}

function deriveSubkey(key: Buffer, field: PiiField): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), `tokenvault/token/${field}`, 32));
}
