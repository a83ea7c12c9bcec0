import { describe, expect } from 'vitest';
import { NOT_A_TOKEN_HINT } from '../../../../services/reveal-api/routes/schemas.js';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { auditRows, bearer, PURPOSE, type RevealHarness } from '../../../support/reveal-harness.js';

const it = revealTestFor();

async function as(harness: RevealHarness, roles: string[], url: string, tokens: string[]) {
  return harness.app.inject({ method: 'POST', url, headers: bearer(await harness.token('pat', roles)), payload: { tokens, purpose: 'GDPR erasure request 2024-117' } });
}

describe('POST /erase', () => {
  it('crypto-shreds the vault row: erased once, not_found afterwards, and never revealable again', async ({ harness, sample: { ip, device } }) => {
    const unknown = `${ip.token.slice(0, -4)}ZZZZ`;
    const response = await as(harness, ['privacy-officer'], '/erase', [ip.token, unknown, ip.token]);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ results: [{ token: ip.token, status: 'erased' }, { token: unknown, error: 'not_found' }], audit_seq: expect.any(Number) });
    const erased = (await auditRows(harness.testDb)).at(-1);
    expect(response.json<{ audit_seq: number }>().audit_seq).toBe(erased?.seq);
    expect(response.headers['x-audit-seq']).toBe(String(erased?.seq));
    expect(erased).toMatchObject({
      action: 'erase',
      actor: 'pat',
      outcome: 'allowed',
      tokens: [ip.token, unknown],
      field_counts: { ip: 1 },
      reason: 'erased=1 not_found=1',
    });

    expect((await as(harness, ['privacy-officer'], '/erase', [ip.token])).json().results).toEqual([{ token: ip.token, error: 'not_found' }]);
    const reveal = await harness.app.inject({
      method: 'POST',
      url: '/reveal',
      headers: bearer(await harness.token('ivy', ['investigator'])),
      payload: { tokens: [ip.token, device.token], purpose: PURPOSE },
    });
    expect(reveal.json().results).toEqual([
      { token: ip.token, error: 'not_found' },
      { token: device.token, field: 'device_id', value: device.value, redaction: 'none' },
    ]);
  });

  it('rolls the delete back when its audit row cannot be written', async ({ harness, sample: { device } }) => {
    await harness.testDb.owner.pool.query('REVOKE INSERT ON audit_log FROM reveal_api');
    try {
      const response = await as(harness, ['privacy-officer'], '/erase', [device.token]);
      expect(response.statusCode).toBe(503);
      expect(response.json().error.code).toBe('audit_unavailable');
    } finally {
      await harness.testDb.owner.pool.query('GRANT INSERT ON audit_log TO reveal_api');
    }
    const { rowCount } = await harness.testDb.owner.pool.query('SELECT 1 FROM pii_vault WHERE token = $1', [device.token]);
    expect(rowCount).toBe(1);
  });

  it('audits malformed tokens as invalid and a caller without the field as denied, by the same rule as reveal', async ({ harness, sample: { device } }) => {
    const invalid = await as(harness, ['privacy-officer'], '/erase', ['ip_v1_not-a-token']);
    expect(invalid.json().results).toEqual([{ token: 'ip_v1_not-a-token', error: 'not_a_token', hint: NOT_A_TOKEN_HINT }]);
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ action: 'erase', outcome: 'invalid', reason: 'not_a_token=1' });

    const partial = await as(harness, ['privacy-officer'], '/erase', [`${device.token.slice(0, -4)}ZZZZ`, 'nope']);
    expect(partial.json().results).toEqual([
      { token: `${device.token.slice(0, -4)}ZZZZ`, error: 'not_found' },
      { token: 'nope', error: 'not_a_token', hint: NOT_A_TOKEN_HINT },
    ]);
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ outcome: 'partial', reason: 'not_found=1 not_a_token=1' });
  });

  it('requires a purpose', async ({ harness, sample: { device } }) => {
    const response = await harness.app.inject({
      method: 'POST',
      url: '/erase',
      headers: bearer(await harness.token('pat', ['privacy-officer'])),
      payload: { tokens: [device.token] },
    });
    expect(response.statusCode).toBe(400);
  });
});
