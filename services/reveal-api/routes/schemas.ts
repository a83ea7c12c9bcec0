import { z } from 'zod';
import { PII_FIELDS } from '../../../lib/crypto/normalize.js';

export const MAX_TOKENS_PER_REQUEST = 100;

// C0/C1 control characters: no filter value legitimately holds one. (NUL and unpaired surrogates, which
// PostgreSQL cannot store, are refused for every input by the validator: http/validation.ts.)
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/** A short filter value compared as text: no control characters, so PostgreSQL never refuses it. */
export function filterTextSchema(maxLength: number) {
  return z
    .string()
    .min(1)
    .max(maxLength)
    .refine((value) => !CONTROL_CHARACTERS.test(value), { message: 'must not contain control characters (NUL, tab, line breaks...)' });
}

/**
 * An ISO-8601 instant PostgreSQL's timestamptz accepts. The ISO pattern allows years 0000-9999;
 * PostgreSQL counts 1 BC, 1 AD (there is no year 0) and refuses 0000 (SQLSTATE 22008).
 */
export const instantSchema = z.iso
  .datetime({ offset: true })
  .refine((value) => !value.startsWith('0000-'), { message: 'year 0000 does not exist: use a date from 0001-01-01 to 9999-12-31' });

export const tokenSchema = z.string().min(1).max(256).describe('A token from user_logins (e.g. ip_v1_...)');

export const purposeSchema = z
  .string()
  .trim()
  .min(10, { message: 'state the purpose in at least 10 characters' })
  .max(500)
  .describe('Why the values are needed (recorded in the audit log)');

export const ticketSchema = z
  .string()
  .trim()
  .min(1)
  .max(128)
  .describe('Case or ticket reference (recorded in the audit log)');

export const fieldSchema = z.enum(PII_FIELDS);

/**
 * A line that is not a token at all (a raw value, a typo, a word): its own code, so it is not
 * mistaken for `invalid_token`, the bearer-token error, with a hint at what a token looks like.
 */
export const NOT_A_TOKEN_HINT =
  'not a token: tokens look like ip_v1_<43 characters> or device_id_v1_<43 characters> (the masked_ip and masked_device_id columns of user_logins); ' +
  'to find the token of a value you know, use POST /tokenize (role analyst)';

export const notATokenResult = z.object({ token: z.string(), error: z.literal('not_a_token'), hint: z.string() });

export function notATokenFor(token: string): z.infer<typeof notATokenResult> {
  return { token, error: 'not_a_token', hint: NOT_A_TOKEN_HINT };
}

export const errorResponseSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string() }) })
  .describe('Every error has this shape');

export const errorResponses = {
  400: errorResponseSchema,
  401: errorResponseSchema,
  403: errorResponseSchema,
  413: errorResponseSchema,
  415: errorResponseSchema,
  429: errorResponseSchema,
  503: errorResponseSchema,
};

export const bearerSecurity = [{ bearerAuth: [] }];

/** The seq of the request's committed audit entry, in response bodies that reveal or erase something. */
export const auditSeqSchema = z
  .number()
  .int()
  .describe("The seq of this attempt's audit entry (also in the X-Audit-Seq header): its receipt, with an inclusion proof to a signed checkpoint, is GET /audit/entries/{seq}");
