import type { z } from 'zod';
import { closest } from './did-you-mean.js';

/**
 * The one error map for input people type (request bodies and query strings, settings):
 * short sentences in place of zod's defaults ("Invalid input: expected string, received
 * undefined"). A message set on a schema still wins. Messages never quote the input: it
 * may be a secret or personal data.
 */
export const humanError: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return `${REQUIRED}${requiredHint(issue.inst)}`;
      // z.coerce.number() turned text into NaN: the text itself is gone (and is not echoed anyway).
      if (typeof issue.input === 'number' && Number.isNaN(issue.input)) return `must be ${article(issue.expected)}`;
      return `must be ${article(issue.expected)}, not ${describeType(issue.input)}`;
    case 'too_big':
      return tooBig(issue.origin, issue.maximum, issue.inclusive ?? true);
    case 'too_small':
      return tooSmall(issue.origin, issue.minimum, issue.inclusive ?? true);
    case 'invalid_format':
      return invalidFormat(issue.format);
    case 'invalid_value':
      if (issue.input === undefined) return `${REQUIRED} (one of: ${issue.values.map((value) => String(value)).join(', ')})`;
      return `must be one of: ${issue.values.map((value) => String(value)).join(', ')}${suggestion(issue.input, issue.values)}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length === 1 ? '' : 's'}: ${issue.keys.map((key) => withSuggestion(key, knownKeys(issue.inst))).join(', ')}`;
    case 'invalid_union':
      return 'does not match any accepted form';
    case 'not_multiple_of':
      return `must be a multiple of ${String(issue.divisor)}`;
    default:
      return 'is not valid';
  }
};

/** `per_huor (did you mean per_hour?)`: a typo names the field it was probably meant to be. */
function withSuggestion(key: string, known: readonly string[]): string {
  const near = closest(key, known);
  return near === undefined ? key : `${key} (did you mean ${near}?)`;
}

/** ` (did you mean plain?)` for a string close to one of the accepted values; values are names, not personal data. */
function suggestion(input: unknown, values: readonly unknown[]): string {
  if (typeof input !== 'string' || input.length > 64) return '';
  const near = closest(input, values.filter((value): value is string => typeof value === 'string'));
  return near === undefined ? '' : ` (did you mean ${near}?)`;
}

/** The field names an object schema accepts (the issue's `inst`). */
function knownKeys(schema: unknown): string[] {
  const shape = (schema as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def?.shape;
  return shape === undefined ? [] : Object.keys(shape);
}

/** The message of a missing value; issue lines read "purpose is required (...)" rather than "purpose: is required". */
export const REQUIRED = 'is required';

/** `purpose is required (at least 10 characters)`, `tokens: at most 100 per request`. */
export function issueLine(path: readonly PropertyKey[], message: string, whole = 'the input'): string {
  const name = pathName(path);
  if (name === '') return `${whole} ${message}`;
  return message.startsWith(REQUIRED) ? `${name} ${message}` : `${name}: ${message}`;
}

/** tokens[3], filters.actor: how people write a place in JSON. */
export function pathName(path: readonly PropertyKey[]): string {
  return path.map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`)).join('');
}

function requiredHint(schema: unknown): string {
  const { minLength } = (schema ?? {}) as { minLength?: number | null };
  if (typeof minLength === 'number' && minLength > 1) return ` (at least ${minLength} characters)`;
  const options = (schema as { options?: unknown } | undefined)?.options;
  if (Array.isArray(options) && options.every((option) => typeof option === 'string')) return ` (one of: ${options.join(', ')})`;
  return '';
}

function tooBig(origin: string, maximum: number | bigint, inclusive: boolean): string {
  const limit = inclusive ? maximum : `${String(maximum)} (exclusive)`;
  switch (origin) {
    case 'string':
      return `at most ${String(limit)} characters`;
    case 'array':
    case 'set':
      return `at most ${String(limit)} per request`;
    default:
      return `at most ${String(limit)}`;
  }
}

function tooSmall(origin: string, minimum: number | bigint, inclusive: boolean): string {
  const limit = inclusive ? minimum : `${String(minimum)} (exclusive)`;
  switch (origin) {
    case 'string':
      return Number(minimum) === 1 && inclusive ? 'must not be empty' : `at least ${String(limit)} characters`;
    case 'array':
    case 'set':
      return Number(minimum) === 1 && inclusive ? 'must list at least one' : `at least ${String(limit)} items`;
    default:
      return `at least ${String(limit)}`;
  }
}

function invalidFormat(format: string): string {
  switch (format) {
    case 'datetime':
      return 'must be an ISO-8601 date and time with a time zone, e.g. 2026-01-31T12:00:00Z';
    case 'url':
      return 'must be an absolute URL, e.g. https://example.com/path';
    case 'uuid':
      return 'must be a UUID';
    case 'regex':
      return 'has the wrong format';
    default:
      return `must be a valid ${format}`;
  }
}

function article(type: string): string {
  return `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
}

function describeType(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  return article(typeof input === 'object' ? 'object' : typeof input);
}
