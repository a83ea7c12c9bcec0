import { describe, expect } from 'vitest';
import { revealTestFor } from '../../../support/reveal-fixture.js';
import { auditRows, auditText, bearer, type RevealHarness } from '../../../support/reveal-harness.js';

const it = revealTestFor();

async function tokenize(harness: RevealHarness, field: string, values: string[]) {
  return harness.app.inject({ method: 'POST', url: '/tokenize', headers: bearer(await harness.token('ana', ['analyst'])), payload: { field, values } });
}

describe('POST /tokenize', () => {
  it('answers by index with the tokens user_logins holds, canonicalising values like the ingestor', async ({ harness, sample: { ip, device } }) => {
    const response = await tokenize(harness, 'ip', ['199.172.111.135', ' 199.172.111.135 ', 'not an ip', '2001:0DB8:85A3:0:0:8A2E:0370:7334']);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      key_version: 1,
      results: [
        { index: 0, token: ip.token },
        { index: 1, token: ip.token },
        { index: 2, error: 'invalid_value' },
        { index: 3, token: expect.stringMatching(/^ip_v1_/) },
      ],
    });
    expect(response.body).not.toContain('199.172');
    const device_ = await tokenize(harness, 'device_id', [device.value]);
    expect(device_.json().results).toEqual([{ index: 0, token: device.token }]);
  });

  it('audits the resulting tokens and counts, never the values', async ({ harness, sample: { ip, device } }) => {
    await tokenize(harness, 'ip', [ip.value]);
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({
      action: 'tokenize',
      actor: 'ana',
      outcome: 'allowed',
      tokens: [ip.token],
      field_counts: { ip: 1 },
      purpose: null,
    });
    const text = await auditText(harness.testDb);
    expect(text).not.toContain(ip.value);
    expect(text).not.toContain(device.value);
    expect(harness.logs.join('\n')).not.toContain(ip.value);
  });

  it('audits values that are all malformed as invalid and a mix as partial', async ({ harness, sample: { ip } }) => {
    await tokenize(harness, 'ip', ['not an ip', 'neither']);
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ action: 'tokenize', outcome: 'invalid', reason: 'invalid_value=2', tokens: [] });
    await tokenize(harness, 'ip', [ip.value, 'not an ip']);
    expect((await auditRows(harness.testDb)).at(-1)).toMatchObject({ outcome: 'partial', reason: 'tokenized=1 invalid_value=1', tokens: [ip.token] });
  });

  it('rejects an unknown field and empty or oversized batches', async ({ harness }) => {
    expect((await tokenize(harness, 'email', ['a@example.com'])).statusCode).toBe(400);
    expect((await tokenize(harness, 'ip', [])).statusCode).toBe(400);
    expect((await tokenize(harness, 'ip', Array(101).fill('10.0.0.1'))).statusCode).toBe(400);
  });

  it('does not echo a rejected value in the error message', async ({ harness }) => {
    const response = await tokenize(harness, 'ip', ['x'.repeat(600)]);
    expect(response.statusCode).toBe(400);
    expect(response.body).not.toContain('xxxx');
  });
});
