import { signal } from '@preact/signals';

/** Tokens picked from an audit row for the reveal form (in memory, never in the URL). */
export const pickedTokens = signal<string[]>([]);

const TOKEN = /^(ip|device_id)_v[1-9][0-9]{0,8}_[A-Za-z0-9_-]{43}$/;

/** The field a token belongs to, from its prefix; undefined when it is not a token. */
export function fieldOf(token: string): 'ip' | 'device_id' | undefined {
  if (!TOKEN.test(token)) return undefined;
  return token.startsWith('ip_') ? 'ip' : 'device_id';
}

/** Tokens pasted one per line, or separated by spaces or commas; duplicates dropped. */
export function parseTokenList(text: string): string[] {
  return [...new Set(text.split(/[\s,;]+/).filter((item) => item.length > 0))];
}
