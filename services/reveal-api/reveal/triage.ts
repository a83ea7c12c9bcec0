import type { PiiField } from '../../../lib/crypto/normalize.js';
import { parseToken } from '../../../lib/crypto/tokens.js';
import type { ItemTally } from '../audit/auditor.js';
import type { Permissions, Redaction } from '../policy/policy.js';

/** What a caller's roles allow to reveal, and how each field is shown. */
export type RevealGrants = Permissions['reveal'];

/** A requested token and the field it holds (undefined: not a token). */
export interface RequestedToken {
  token: string;
  field: PiiField | undefined;
}

export interface PermittedToken {
  token: string;
  field: PiiField;
  redaction: Redaction;
}

/** The tokens of one reveal, judged once against the caller's grants, before anything is read. */
export interface Triage {
  /** Each token once, in the order first asked. */
  readonly requested: readonly RequestedToken[];
  /** The well-formed tokens: what the audit row names. */
  readonly wellFormed: readonly string[];
  /** Well-formed and granted, with how each is shown. */
  readonly permitted: readonly PermittedToken[];
  /** Permitted tokens per field (what an approval request is about). */
  readonly permittedFields: Partial<Record<PiiField, number>>;
  readonly tally: ItemTally;
  readonly grants: RevealGrants;
}

/** Tokens as a caller sent them: each parsed once (duplicates collapse), then judged. */
export function triageTokens(tokens: readonly string[], grants: RevealGrants): Triage {
  return triage(
    [...new Set(tokens)].map((token) => ({ token, field: parseToken(token)?.field })),
    grants,
  );
}

/** Tokens whose field is known already (a person's rows name it by column), each once. */
export function triage(requested: readonly RequestedToken[], grants: RevealGrants): Triage {
  const wellFormed: string[] = [];
  const permitted: PermittedToken[] = [];
  const permittedFields: Partial<Record<PiiField, number>> = {};
  let forbidden = 0;
  for (const { token, field } of requested) {
    if (field === undefined) continue;
    wellFormed.push(token);
    const redaction = grants[field];
    if (redaction === undefined) {
      forbidden += 1;
      continue;
    }
    permitted.push({ token, field, redaction });
    permittedFields[field] = (permittedFields[field] ?? 0) + 1;
  }
  return {
    requested,
    wellFormed,
    permitted,
    permittedFields,
    tally: { permitted: permitted.length, forbidden, invalid: requested.length - wellFormed.length },
    grants,
  };
}
