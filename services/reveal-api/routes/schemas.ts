import { z } from 'zod';
import { PII_FIELDS } from '../../../lib/crypto/normalize.js';

export const MAX_TOKENS_PER_REQUEST = 100;

/** PostgreSQL text cannot hold NUL; refuse it instead of storing something else than was sent. */
const printable = (value: string) => !value.includes('\u0000');

export const tokenSchema = z.string().min(1).max(256).describe('A token from user_logins (e.g. ip_v1_...)');

export const purposeSchema = z
  .string()
  .trim()
  .min(10, { message: 'state the purpose in at least 10 characters' })
  .max(500)
  .refine(printable, { message: 'must not contain NUL characters' })
  .describe('Why the values are needed (recorded in the audit log)');

export const ticketSchema = z
  .string()
  .trim()
  .min(1)
  .max(128)
  .refine(printable, { message: 'must not contain NUL characters' })
  .describe('Case or ticket reference (recorded in the audit log)');

export const fieldSchema = z.enum(PII_FIELDS);

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
