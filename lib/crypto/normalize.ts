import { isIP } from 'node:net';

export const PII_FIELDS = ['ip', 'device_id'] as const;
export type PiiField = (typeof PII_FIELDS)[number];

export function isPiiField(value: string): value is PiiField {
  return (PII_FIELDS as readonly string[]).includes(value);
}

/**
 * Canonical text of an IP address, or undefined when it is not one.
 * IPv6 goes through the WHATWG URL host parser, which emits the RFC 5952 form
 * (lower case, longest zero run compressed), so `2001:0DB8::0001` and `2001:db8::1`
 * tokenise alike. IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is the IPv4 address it carries.
 * Zone ids (`fe80::1%eth0`) and IPv4 with leading zeros are rejected: they are ambiguous.
 */
export function canonicalIp(raw: string): string | undefined {
  const family = isIP(raw);
  if (family === 4) return raw;
  if (family !== 6) return undefined;
  let host: string;
  try {
    host = new URL(`http://[${raw}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (mapped?.[1] !== undefined && mapped[2] !== undefined) {
    const high = Number.parseInt(mapped[1], 16);
    const low = Number.parseInt(mapped[2], 16);
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
  }
  return host;
}

/** Device ids are opaque; only surrounding white space is insignificant. */
export function canonicalDeviceId(raw: string): string {
  return raw.trim();
}

/** The canonical form a value is tokenised and stored in, or undefined when the value is invalid for its field. */
export function canonicalValue(field: PiiField, raw: string): string | undefined {
  if (field === 'ip') return canonicalIp(raw.trim());
  const value = canonicalDeviceId(raw);
  return value.length === 0 ? undefined : value;
}
