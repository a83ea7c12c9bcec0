import { signal } from '@preact/signals';

/** Tokens picked from an audit row for the reveal form (in memory, never in the URL). */
export const pickedTokens = signal<string[]>([]);

const TOKEN = /^(ip|device_id)_v[1-9][0-9]{0,8}_[A-Za-z0-9_-]{43}$/;

/** The field a token belongs to, from its prefix; undefined when it is not a token. */
export function fieldOf(token: string): 'ip' | 'device_id' | undefined {
  if (!TOKEN.test(token)) return undefined;
  return token.startsWith('ip_') ? 'ip' : 'device_id';
}

/**
 * Tokens pasted one per line, or separated by spaces, commas or semicolons (a token never holds
 * one); duplicates dropped. `others` are the items that are not tokens, in the order typed:
 * the form refuses them before anything is sent.
 */
export function parseTokenList(text: string): { tokens: string[]; others: string[] } {
  const items = [...new Set(text.split(/[\s,;]+/).filter((item) => item.length > 0))];
  return { tokens: items.filter((item) => fieldOf(item) !== undefined), others: items.filter((item) => fieldOf(item) === undefined) };
}

/** The form's error for items that are not tokens: which ones (shortened), what a token looks like, where to get one. */
export function notTokensMessage(others: readonly string[]): string {
  const shown = others.slice(0, 3).map((item) => `“${item.length > 40 ? `${item.slice(0, 40)}…` : item}”`);
  const more = others.length > 3 ? ` and ${others.length - 3} more` : '';
  const which = others.length === 1 ? `${shown.join('')} is not a token` : `${shown.join(', ')}${more} are not tokens`;
  return (
    `${which}: nothing was sent. Tokens look like ip_v1_… or device_id_v1_… followed by 43 letters, digits, - or _ ` +
    '(the masked_ip and masked_device_id columns of user_logins), one per line or separated by spaces or commas. ' +
    'To find the token of a value you know, use Tokenize (analysts).'
  );
}
