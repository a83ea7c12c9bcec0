import { describe, expect, it } from 'vitest';
import { checkReadiness, describeFailure, readinessStatus } from '../../../lib/health/readiness.js';

describe('checkReadiness', () => {
  it('is ready when every check passes, with details where a check gives one', async () => {
    const readiness = await checkReadiness({ database: async () => undefined, tokenKey: async () => 'v3' });
    expect(readiness).toEqual({ status: 'ready', checks: { database: { ok: true }, tokenKey: { ok: true, detail: 'v3' } } });
    expect(readinessStatus(readiness)).toBe(200);
  });

  it('is not ready when one check throws or reports a failure, and says which and why without the error text', async () => {
    const failures: string[] = [];
    const readiness = await checkReadiness(
      {
        database: () => Promise.reject(Object.assign(new Error('password authentication failed for user "admin"'), { code: '28P01' })),
        queue: async () => ({ ok: false, error: 'unreachable' }),
        keys: async () => undefined,
      },
      (name) => failures.push(name),
    );
    expect(readiness).toEqual({
      status: 'not_ready',
      checks: { database: { ok: false, error: 'unavailable (28P01)' }, queue: { ok: false, error: 'unreachable' }, keys: { ok: true } },
    });
    expect(readinessStatus(readiness)).toBe(503);
    expect(failures).toEqual(['database']);
  });

  it('names the error class when there is no code', () => {
    class KeyProviderError extends Error {
      override name = 'KeyProviderError';
    }
    expect(describeFailure(new KeyProviderError('arn:aws:kms:... is disabled'))).toBe('KeyProviderError');
    expect(describeFailure('weird')).toBe('unavailable');
  });
});
