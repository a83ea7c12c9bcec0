import { z } from 'zod';
import type { Resolution } from '../reveal/resolve.js';
import { fieldSchema, notATokenFor, notATokenResult } from './schemas.js';

/** One token's answer in POST /reveal and in a collected reveal request. */
export const revealResult = z.union([
  z.object({ token: z.string(), field: fieldSchema, value: z.string(), redaction: z.enum(['none', 'masked']) }),
  z.object({ token: z.string(), error: z.enum(['not_found', 'forbidden', 'undecryptable']) }),
  notATokenResult,
]);

export type RevealResult = z.infer<typeof revealResult>;

/** A resolution as answered: a string that is not a token gets its hint. */
export function revealResultOf(resolution: Resolution): RevealResult {
  if (!('error' in resolution)) return resolution;
  return resolution.error === 'not_a_token' ? notATokenFor(resolution.token) : { token: resolution.token, error: resolution.error };
}
