import type { PiiField } from '../../../lib/crypto/normalize.js';
import { maskValue } from '../policy/mask.js';
import type { Vault } from '../vault/vault.js';
import type { Triage } from './triage.js';

/** What became of one requested token (the answer's shape, before a route words it). */
export type Resolution =
  | { token: string; field: PiiField; value: string; redaction: 'none' | 'masked' }
  | { token: string; error: 'not_found' | 'forbidden' | 'undecryptable' }
  | { token: string; error: 'not_a_token' };

export type ResolutionCounts = Record<'revealed' | 'not_found' | 'forbidden' | 'not_a_token' | 'undecryptable', number>;

/** Values decrypted for a triage: nothing audited, charged or sent yet. */
export interface Resolved {
  triage: Triage;
  /** One per requested token, in the triage's order. */
  resolutions: Resolution[];
  counts: ResolutionCounts;
  /** Values revealed per field (as the vault row names it). */
  fieldCounts: Partial<Record<PiiField, number>>;
}

/** Decrypts the permitted tokens (one vault read) and shapes one resolution per requested token. */
export async function resolve(vault: Vault, triage: Triage): Promise<Resolved> {
  const found = await vault.lookup(triage.permitted.map((item) => item.token));
  const counts: ResolutionCounts = { revealed: 0, not_found: 0, forbidden: 0, not_a_token: 0, undecryptable: 0 };
  const fieldCounts: Partial<Record<PiiField, number>> = {};
  const refuse = (token: string, error: 'not_found' | 'forbidden' | 'undecryptable'): Resolution => {
    counts[error] += 1;
    return { token, error };
  };
  const resolutions = triage.requested.map((item): Resolution => {
    if (item.field === undefined) {
      counts.not_a_token += 1;
      return { token: item.token, error: 'not_a_token' };
    }
    const redaction = triage.grants[item.field];
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
  return { triage, resolutions, counts, fieldCounts };
}
