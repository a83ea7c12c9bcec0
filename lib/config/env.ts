import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { humanError, REQUIRED } from '../validation/human-errors.js';

export type Env = Record<string, string | undefined>;

/**
 * Validates the environment against a zod object schema whose keys are the variable
 * names, so every error message names the setting that is wrong.
 */
export function parseEnv<S extends z.ZodObject>(schema: S, env: Env): z.infer<S> {
  // Empty strings count as unset: `FOO=` in a compose file must not mean "the empty value".
  const cleaned: Env = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value.trim() !== '') cleaned[key] = value;
  }
  const result = schema.safeParse(cleaned, { error: humanError });
  if (result.success) return result.data;
  const settings = [...new Set(result.error.issues.map((issue) => String(issue.path[0] ?? '?')))];
  const lines = result.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? '?');
    if (cleaned[name] !== undefined) return `  ${name}: ${issue.message}`;
    return issue.message.startsWith(REQUIRED) ? `  ${name}: is required but not set${issue.message.slice(REQUIRED.length)}` : `  ${name}: is required but not set (${issue.message})`;
  });
  return throwConfig(`Invalid configuration:\n${lines.join('\n')}`, settings);
}

function throwConfig(message: string, settings: string[]): never {
  throw new ConfigError(message, settings);
}

export const envInt = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const envBool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

export const envUrl = z.url({ message: 'expected an absolute URL' });

export const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');

/** The process environment: the one place it is read. Mains pass it to their config loader. */
export function processEnv(): Env {
  return { ...process.env };
}
