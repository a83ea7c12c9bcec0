import { z } from 'zod';
import type { PiiField } from '../../../lib/crypto/normalize.js';
import { parseToken } from '../../../lib/crypto/tokens.js';
import { maskValue } from '../policy/mask.js';
import type { Permissions } from '../policy/policy.js';
import type { Vault } from '../vault/vault.js';
import { fieldSchema, notATokenFor, notATokenResult } from './schemas.js';

export const revealResult = z.union([
  z.object({ token: z.string(), field: fieldSchema, value: z.string(), redaction: z.enum(['none', 'masked']) }),
  z.object({ token: z.string(), error: z.enum(['not_found', 'forbidden', 'undecryptable']) }),
  notATokenResult,
]);

export type RevealResult = z.infer<typeof revealResult>;

export interface Resolved {
  results: RevealResult[];
  counts: Record<'revealed' | 'not_found' | 'forbidden' | 'not_a_token' | 'undecryptable', number>;
  fieldCounts: Partial<Record<PiiField, number>>;
}

/** The requested tokens, each once, with the field its prefix names (undefined: not a token). */
export function parseRequested(tokens: readonly string[]): { token: string; field: PiiField | undefined }[] {
  return [...new Set(tokens)].map((token) => ({ token, field: parseToken(token)?.field }));
}

/** Decrypts what `grants` allow and shapes one result per token. Nothing here is audited or sent yet. */
export async function resolveTokens(vault: Vault, grants: Permissions['reveal'], requested: readonly { token: string; field: PiiField | undefined }[]): Promise<Resolved> {
  const permitted = requested.filter((item) => item.field !== undefined && grants[item.field] !== undefined).map((item) => item.token);
  const found = await vault.lookup(permitted);
  const counts = { revealed: 0, not_found: 0, forbidden: 0, not_a_token: 0, undecryptable: 0 };
  const fieldCounts: Partial<Record<PiiField, number>> = {};
  const refuse = (token: string, error: 'not_found' | 'forbidden' | 'undecryptable'): RevealResult => {
    counts[error] += 1;
    return { token, error };
  };
  const results = requested.map((item): RevealResult => {
    if (item.field === undefined) {
      counts.not_a_token += 1;
      return notATokenFor(item.token);
    }
    const redaction = grants[item.field];
    if (redaction === undefined) return refuse(item.token, 'forbidden');
    const entry = found.get(item.token);
    if (entry === undefined) return refuse(item.token, 'not_found');
    if ('error' in entry) return refuse(item.token, entry.error);
    fieldCounts[entry.field] = (fieldCounts[entry.field] ?? 0) + 1;
    counts.revealed += 1;
    return redaction === 'plain'
      ? { token: item.token, field: entry.field, value: entry.value, redaction: 'none' }
      : { token: item.token, field: entry.field, value: maskValue(entry.field, entry.value), redaction: 'masked' };
  });
  return { results, counts, fieldCounts };
}
