import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { open } from '../../../../lib/crypto/aead.js';
import { Tokenizer } from '../../../../lib/crypto/tokens.js';
import { quarantineAad, vaultAad } from '../../../../lib/crypto/vault-context.js';
import type { InboundMessage } from '../../../../services/ingestor/message.js';
import { dedupeById, planBatch, sealBatch, sealCount, type PlanOptions } from '../../../../services/ingestor/sink/prepare.js';
import { loginEvent } from '../../../support/ingestor-harness.js';

const tokenizer = new Tokenizer(randomBytes(32), 3);
const SENT = new Date('2026-03-01T12:00:00.000Z');
const options: PlanOptions = { tokenizer, isStored: () => false, unknownFields: 'drop' };

let next = 0;
function message(body: unknown, overrides: Partial<InboundMessage> = {}): InboundMessage {
  next += 1;
  return { messageId: `m-${next}`, body: typeof body === 'string' ? body : JSON.stringify(body), sentAt: SENT, receiveCount: 1, ...overrides };
}

describe('preparing a batch (no database, no key provider)', () => {
  it('turns a valid event into a login row with tokens and two vault values, the plaintext only in the vault values', () => {
    const event = loginEvent({ ip: '10.1.2.3', device_id: '123-45-6789', app_version: '2.3.1' });
    const plan = planBatch([message(event)], options);
    expect(plan.rejected).toEqual([]);
    expect(plan.tokenKeyVersion).toBe(3);
    const [login] = plan.logins;
    expect(login).toMatchObject({
      userId: event.user_id,
      deviceType: event.device_type,
      ipToken: tokenizer.tokenizeCanonical('ip', '10.1.2.3'),
      deviceIdToken: tokenizer.tokenizeCanonical('device_id', '123-45-6789'),
      appVersion: '2.3.1',
      major: 2,
      minor: 3,
      patch: 1,
      sentAtMs: SENT.getTime(),
    });
    expect(JSON.stringify(plan.logins)).not.toContain('10.1.2.3');
    expect(JSON.stringify(plan.logins)).not.toContain('123-45-6789');
    expect(plan.vault).toEqual([
      { token: login?.ipToken, field: 'ip', value: '10.1.2.3' },
      { token: login?.deviceIdToken, field: 'device_id', value: '123-45-6789' },
    ]);
  });

  it('writes each token to the vault once per batch and not at all when it is known to be stored', () => {
    const shared = { ip: '10.9.9.9', device_id: '999-99-9999' };
    const messages = [message(loginEvent(shared)), message(loginEvent(shared))];
    expect(planBatch(messages, options).vault).toHaveLength(2);
    const knownIp = tokenizer.tokenizeCanonical('ip', '10.9.9.9');
    const plan = planBatch(messages, { ...options, isStored: (token) => token === knownIp });
    expect(plan.logins).toHaveLength(2);
    expect(plan.vault.map((row) => row.field)).toEqual(['device_id']);
  });

  it('rejects invalid messages with their reasons, and forced ones without parsing them', () => {
    const bad = message('{"user_id": ');
    const good = message(loginEvent());
    const forced = new Map([[good.messageId, [{ code: 'storage_rejected', path: 'sqlstate:23514' }]]]);
    const plan = planBatch([bad, good], { ...options, forced });
    expect(plan.logins).toEqual([]);
    expect(plan.vault).toEqual([]);
    expect(plan.rejected.map(({ message: m, reasons }) => [m.messageId, reasons[0]?.code])).toEqual([
      [bad.messageId, 'invalid_json'],
      [good.messageId, 'storage_rejected'],
    ]);
  });

  it('drops unknown fields (names kept) or quarantines them, as the policy says', () => {
    const extra = message({ ...loginEvent(), campaign: 'spring' });
    expect(planBatch([extra], options)).toMatchObject({ droppedFields: [['campaign']], rejected: [] });
    const strict = planBatch([extra], { ...options, unknownFields: 'quarantine' });
    expect(strict.logins).toEqual([]);
    expect(strict.rejected[0]?.reasons).toEqual([{ code: 'unexpected_field', path: 'campaign' }]);
  });

  it('seals vault values bound to their token and quarantined bodies bound to their message id', () => {
    const good = message(loginEvent({ ip: '10.7.7.7' }));
    const bad = message('not json 10.8.8.8', { receiveCount: 4 });
    const plan = planBatch([good, bad], options);
    expect(sealCount(plan)).toBe(3);
    const key = randomBytes(32);
    const batch = sealBatch(plan, { id: 42, key });
    expect(batch.dataKeyId).toBe(42);
    expect(batch.tokenKeyVersion).toBe(3);
    for (const row of batch.vault) {
      const value = plan.vault.find((pending) => pending.token === row.token)?.value;
      expect(open(key, row.ciphertext, vaultAad(row.token)).toString('utf8')).toBe(value);
      // Moved to another token, the ciphertext no longer opens.
      const other = batch.vault.find((candidate) => candidate.token !== row.token);
      expect(() => open(key, row.ciphertext, vaultAad(other?.token ?? ''))).toThrow();
    }
    expect(batch.quarantine).toEqual([
      expect.objectContaining({ messageId: bad.messageId, bodyBytes: 17, sentAtMs: SENT.getTime(), receiveCount: 4 }),
    ]);
    expect(open(key, batch.quarantine[0]?.ciphertext ?? Buffer.alloc(0), quarantineAad(bad.messageId)).toString('utf8')).toBe('not json 10.8.8.8');
    expect(JSON.stringify(batch)).not.toContain('10.7.7.7');
    expect(JSON.stringify(batch)).not.toContain('10.8.8.8');
  });

  it('needs no data key when there is nothing to seal', () => {
    const known = planBatch([message(loginEvent())], { ...options, isStored: () => true });
    expect(sealCount(known)).toBe(0);
    expect(sealBatch(known, undefined)).toMatchObject({ vault: [], quarantine: [], dataKeyId: 0 });
  });

  it('keeps the first of messages repeated in one receive', () => {
    const a = message('a');
    const b = message('b');
    expect(dedupeById([a, b, { ...a, body: 'again' }]).map((m) => m.body)).toEqual(['a', 'b']);
  });
});
