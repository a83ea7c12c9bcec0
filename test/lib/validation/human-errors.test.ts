import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { humanError, issueLine } from '../../../lib/validation/human-errors.js';

const body = z.object({
  tokens: z.array(z.string().max(8)).min(1).max(3),
  purpose: z.string().trim().min(10).max(500),
  field: z.enum(['ip', 'device_id']),
  limit: z.coerce.number().int().min(1).max(200).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  ticket: z.string().min(1).optional(),
});

function lines(input: unknown): string[] {
  const result = body.safeParse(input, { error: humanError });
  if (result.success) return [];
  return result.error.issues.map((issue) => issueLine(issue.path, issue.message, 'the request body'));
}

describe('humanError', () => {
  it('says what is missing and what it needs, instead of zod defaults', () => {
    expect(lines({ tokens: ['a'], field: 'ip' })).toEqual(['purpose is required (at least 10 characters)']);
    expect(lines({ tokens: ['a'], purpose: 'x'.repeat(12) })).toEqual(['field is required (one of: ip, device_id)']);
  });

  it('states limits in words', () => {
    expect(lines({ tokens: ['a', 'b', 'c', 'd'], purpose: 'x'.repeat(12), field: 'ip' })).toEqual(['tokens: at most 3 per request']);
    expect(lines({ tokens: [], purpose: 'too short', field: 'ip' })).toEqual(['tokens: must list at least one', 'purpose: at least 10 characters']);
    expect(lines({ tokens: ['123456789'], purpose: 'x'.repeat(12), field: 'ip', ticket: '' })).toEqual([
      'tokens[0]: at most 8 characters',
      'ticket: must not be empty',
    ]);
    expect(lines({ tokens: ['a'], purpose: 'x'.repeat(12), field: 'ip', limit: '500' })).toEqual(['limit: at most 200']);
  });

  it('names types, formats and options without quoting the value', () => {
    const secret = '199.172.111.135';
    const result = lines({ tokens: { ip: secret }, purpose: 42, field: secret, limit: 'many', from: secret });
    expect(result).toEqual([
      'tokens: must be an array, not an object',
      'purpose: must be a string, not a number',
      'field: must be one of: ip, device_id',
      'limit: must be a number',
      'from: must be an ISO-8601 date and time with a time zone, e.g. 2026-01-31T12:00:00Z',
    ]);
    expect(result.join('\n')).not.toContain(secret);
    expect(lines('nope')).toEqual(['the request body must be an object, not a string']);
  });

  it('leaves a message set on the schema as it is', () => {
    const schema = z.string().min(10, { message: 'state the purpose in at least 10 characters' });
    expect(schema.safeParse('short', { error: humanError }).error?.issues[0]?.message).toBe('state the purpose in at least 10 characters');
  });
});
