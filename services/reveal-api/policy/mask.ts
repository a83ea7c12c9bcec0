import { isIP } from 'node:net';
import type { PiiField } from '../../../lib/crypto/normalize.js';

/**
 * Masked forms for callers allowed to confirm, not to learn, a value (support desks):
 * enough to match what a customer reads out, too little to identify them.
 */
export function maskValue(field: PiiField, value: string): string {
  return field === 'ip' ? maskIp(value) : maskDeviceId(value);
}

/** `593-47-5928` → `***-**-5928`: every alphanumeric but the last four becomes `*`, separators stay. */
export function maskDeviceId(value: string): string {
  const characters = [...value];
  const alphanumeric = characters.filter(isAlphanumeric).length;
  // Short ids would be shown whole: keep at most half of them.
  let keep = Math.min(4, Math.floor(alphanumeric / 2));
  for (let index = characters.length - 1; index >= 0; index -= 1) {
    const character = characters[index] ?? '';
    if (!isAlphanumeric(character)) continue;
    if (keep > 0) keep -= 1;
    else characters[index] = '*';
  }
  return characters.join('');
}

/** IPv4 keeps the first two octets (`199.172.*.*`), IPv6 the first two groups (`2001:db8:*:*:*:*:*:*`). */
export function maskIp(value: string): string {
  const family = isIP(value);
  if (family === 4) {
    const [a, b] = value.split('.');
    return `${a}.${b}.*.*`;
  }
  if (family === 6) {
    const groups = expandIpv6(value);
    return [groups[0], groups[1], '*', '*', '*', '*', '*', '*'].join(':');
  }
  return maskDeviceId(value);
}

function expandIpv6(value: string): string[] {
  const [head = '', tail] = value.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = Math.max(0, 8 - left.length - right.length);
  return [...left, ...Array<string>(missing).fill('0'), ...right];
}

function isAlphanumeric(character: string): boolean {
  return /^[\p{L}\p{N}]$/u.test(character);
}
