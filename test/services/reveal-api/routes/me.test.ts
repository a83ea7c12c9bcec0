import { describe, expect } from 'vitest';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { bearer, PURPOSE, type SeededValue } from '../../../support/reveal-harness.js';

// The default policy: investigators need approval above 20 values, have budgets and break-glass.
const it = revealTestFor({ seed: Array.from({ length: 22 }, (_, index) => ({ field: 'ip' as const, value: `192.0.2.${index + 10}` })) }, { timeout: 120_000 });

describe('GET /me', () => {
  it('shows the caller their roles, per-field permissions, remaining budgets and open requests', async ({ harness, seeded: values }) => {
    const headers = bearer(await harness.token('uma', ['investigator', 'nonsense']));
    const token = (values[0] as SeededValue).token;
    expect((await harness.app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: [token], purpose: PURPOSE } })).statusCode).toBe(200);
    const many = values.slice(1).map((item) => item.token);
    const pending = await harness.app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: many, purpose: PURPOSE, ticket: 'T-1' } });
    expect(pending.statusCode).toBe(202);

    const me = await harness.app.inject({ url: '/me', headers });
    expect(me.statusCode).toBe(200);
    const body = me.json();
    expect(body).toMatchObject({
      subject: 'uma',
      roles: ['investigator', 'nonsense'],
      unknown_roles: ['nonsense'],
      fields: {
        ip: { reveal: 'plain', approval: 'above 20', tokenize: false, erase: false },
        device_id: { reveal: 'plain', approval: 'above 20', tokenize: false, erase: false },
      },
      audit: false,
      approve: false,
      break_glass: true,
      budgets: [
        { budget: 'minute', limit: 200, used: 1, remaining: 199, reset_at: expect.any(String) },
        { budget: 'hour', limit: 1000, used: 1, remaining: 999 },
        { budget: 'day', limit: 5000, used: 1, remaining: 4999 },
      ],
      break_glass_budget: { budget: 'break_glass', limit: 20, used: 0, remaining: 20 },
    });
    expect(body.requests).toEqual([
      expect.objectContaining({ id: pending.json().request_id, status: 'pending', ticket: 'T-1', field_counts: { ip: 21 }, approvals: 0, approvals_required: 1 }),
    ]);
  });

  it('answers an auditor with no reveal rights and no budgets', async ({ harness }) => {
    const me = await harness.app.inject({ url: '/me', headers: bearer(await harness.token('vic', ['auditor'])) });
    expect(me.json()).toMatchObject({
      audit: true,
      fields: { ip: { reveal: null, approval: 'not applicable' } },
      budgets: [],
      break_glass_budget: null,
      requests: [],
    });
  });

  it('requires a token', async ({ harness }) => {
    expect((await harness.app.inject({ url: '/me' })).statusCode).toBe(401);
  });
});
