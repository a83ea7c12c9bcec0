import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES, parseAppVersion, parseLoginEvent, UNSAFE_FIELD_NAME } from '../../../services/ingestor/message.js';

const valid = {
  user_id: '424cdd21-063a-43a7-b91b-7ca1a833afae',
  app_version: '2.3.0',
  device_type: 'android',
  ip: '199.172.111.135',
  locale: 'RU',
  device_id: '593-47-5928',
};
const body = (overrides: Record<string, unknown>) => JSON.stringify({ ...valid, ...overrides });
const codes = (raw: string) => {
  const result = parseLoginEvent(raw);
  return result.ok ? [] : result.reasons;
};

describe('login event validation', () => {
  it('accepts the 99 well-formed reference messages and rejects line 13', () => {
    const lines = readFileSync(new URL('../../../data/login-queue.sample.jsonl', import.meta.url), 'utf8').split('\n').filter(Boolean);
    const rejected = lines.map((line, index) => ({ line: index + 1, result: parseLoginEvent(line) })).filter(({ result }) => !result.ok);
    expect(lines).toHaveLength(100);
    expect(rejected.map(({ line }) => line)).toEqual([13]);
    expect(codes(lines[12] ?? '')).toEqual(
      expect.arrayContaining([
        { code: 'unexpected_field', path: 'foo' },
        { code: 'unexpected_field', path: 'bar' },
        { code: 'missing_field', path: 'user_id' },
      ]),
    );
  });

  it('accepts on its fast path exactly what the schema accepts, with the same event, and leaves every refusal to the schema', () => {
    const { locale: _omitted, ...withoutLocale } = valid;
    const texts = ['', 'a', ' padded ', 'x'.repeat(32), 'x'.repeat(33), 'x'.repeat(128), 'x'.repeat(129), 'tab\there', 'nul\u0000', 'del\u007f', 'c1\u0085', 'lone\ud800', 'pair\ud83d\ude00', 'back\\slash', 'ünïcode', 0, true, null, [], {}];
    const ips = ['199.172.111.135', ' 10.0.0.1 ', '010.0.0.1', '2001:0DB8::0001', '::ffff:1.2.3.4', 'fe80::1%eth0', 'not an ip', ''];
    const devices = ['593-47-5928', '  593-47-5928  ', '   ', ''];
    const bodies: string[] = [JSON.stringify(withoutLocale), body({ locale: null }), body({ extra: 1 }), JSON.stringify(valid).replace('{', '{"__proto__":1,')];
    for (const field of ['user_id', 'app_version', 'device_type', 'ip', 'locale', 'device_id']) {
      for (const value of texts) bodies.push(body({ [field]: value }));
    }
    for (const ip of ips) bodies.push(body({ ip }));
    for (const device_id of devices) bodies.push(body({ device_id }));
    let accepted = 0;
    for (const raw of bodies) {
      for (const unknownFields of ['drop', 'quarantine'] as const) {
        const fast = parseLoginEvent(raw, { unknownFields });
        expect(fast, raw).toEqual(parseLoginEvent(raw, { unknownFields, fastPath: false }));
        if (fast.ok) accepted += 1;
      }
    }
    // Both outcomes were exercised.
    expect(accepted).toBeGreaterThan(20);
    expect(accepted).toBeLessThan(bodies.length * 2 - 20);
  });

  it('treats a null or missing locale as no locale', () => {
    const withNull = parseLoginEvent(body({ locale: null }));
    const { locale: _omitted, ...rest } = valid;
    const missing = parseLoginEvent(JSON.stringify(rest));
    expect(withNull.ok && withNull.event.locale).toBeNull();
    expect(missing.ok && missing.event.locale).toBeNull();
  });

  it('returns canonical PII values (IPv6 compressed and lower-cased, IPv4-mapped unwrapped)', () => {
    const v6 = parseLoginEvent(body({ ip: '2001:0DB8:0000::0001' }));
    const mapped = parseLoginEvent(body({ ip: '::ffff:199.172.111.135' }));
    expect(v6.ok && v6.event.ip).toBe('2001:db8::1');
    expect(mapped.ok && mapped.event.ip).toBe('199.172.111.135');
  });

  it.each([
    ['invalid JSON', '{"user_id": ', [{ code: 'invalid_json' }]],
    ['an array', '[1,2,3]', [{ code: 'not_an_object' }]],
    ['a number', '42', [{ code: 'not_an_object' }]],
    ['null', 'null', [{ code: 'not_an_object' }]],
    ['a string', '"hello"', [{ code: 'not_an_object' }]],
    ['an empty body', '', [{ code: 'invalid_json' }]],
    ['deep nesting', `${'['.repeat(10_000)}${']'.repeat(10_000)}`, [{ code: 'nesting_too_deep' }]],
    ['a huge body', JSON.stringify({ ...valid, pad: 'x'.repeat(MAX_BODY_BYTES) }), [{ code: 'body_too_large' }]],
    ['a __proto__ key', `{"__proto__": {"polluted": true}, ${body({}).slice(1)}`, [{ code: 'forbidden_key', path: '__proto__' }]],
    ['a constructor key', body({ constructor: { prototype: {} } }), [{ code: 'forbidden_key', path: 'constructor' }]],
    ['a prototype key', body({ prototype: { ip: '10.1.2.3' } }), [{ code: 'forbidden_key', path: 'prototype' }]],
    ['a __proto__ key that would supply a missing field', `{"__proto__": {"ip": "10.1.2.3"}, ${JSON.stringify({ ...valid, ip: undefined }).slice(1)}`, [
      { code: 'forbidden_key', path: '__proto__' },
      { code: 'missing_field', path: 'ip' },
    ]],
    ['a NUL byte', body({ user_id: 'abc\u0000def' }), [{ code: 'control_character', path: 'user_id' }]],
    ['a control character', body({ device_type: 'ios\u001b[31m' }), [{ code: 'control_character', path: 'device_type' }]],
    ['a lone surrogate', body({ locale: 'R\ud800' }), [{ code: 'invalid_unicode', path: 'locale' }]],
    ['an over-long user_id', body({ user_id: 'u'.repeat(129) }), [{ code: 'too_long', path: 'user_id' }]],
    ['an over-long app_version', body({ app_version: '1'.repeat(33) }), [{ code: 'too_long', path: 'app_version' }]],
    ['an empty device_id', body({ device_id: '   ' }), [{ code: 'empty', path: 'device_id' }]],
    ['a number where a string is expected', body({ app_version: 2.3 }), [{ code: 'invalid_type', path: 'app_version' }]],
    ['an object where a string is expected', body({ ip: { v4: '1.2.3.4' } }), [{ code: 'invalid_type', path: 'ip' }]],
    ['a missing field', JSON.stringify({ ...valid, device_id: undefined }), [{ code: 'missing_field', path: 'device_id' }]],
    ['an invalid IP', body({ ip: '999.1.1.1' }), [{ code: 'invalid_ip', path: 'ip' }]],
    ['an IPv4 with leading zeros', body({ ip: '010.001.001.001' }), [{ code: 'invalid_ip', path: 'ip' }]],
    ['an IPv6 zone id', body({ ip: 'fe80::1%eth0' }), [{ code: 'invalid_ip', path: 'ip' }]],
  ])('rejects %s with reason codes only', (_name, raw, expected) => {
    const reasons = codes(raw);
    expect(reasons).toEqual(expect.arrayContaining(expected));
    // Codes and field names only: no value of the message may appear in a reason.
    for (const reason of reasons) expect(Object.keys(reason).every((key) => key === 'code' || key === 'path')).toBe(true);
    expect(JSON.stringify(reasons)).not.toMatch(/199\.172|593-47|10\.1\.2\.3|polluted/);
  });

  describe('fields a login event does not define', () => {
    it('drops them by default and reports their names, never their values', () => {
      const result = parseLoginEvent(body({ campaign: 'spring-sale', os_version: 14, '10.1.2.3': 'x' }));
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.droppedFields).toEqual(['campaign', 'os_version', UNSAFE_FIELD_NAME]);
      expect(result.event).toEqual({
        userId: valid.user_id,
        deviceType: valid.device_type,
        ip: valid.ip,
        deviceId: valid.device_id,
        locale: valid.locale,
        appVersion: valid.app_version,
        appVersionParts: { major: 2, minor: 3, patch: 0 },
      });
      expect(JSON.stringify(result)).not.toMatch(/spring-sale|10\.1\.2\.3/);
    });

    it('quarantines them with unexpected_field when the policy is quarantine', () => {
      const strict = (raw: string) => {
        const result = parseLoginEvent(raw, { unknownFields: 'quarantine' });
        return result.ok ? [] : result.reasons;
      };
      expect(strict(body({ extra: 'x' }))).toEqual([{ code: 'unexpected_field', path: 'extra' }]);
      expect(strict(body({ '10.1.2.3': 'x' }))).toEqual([{ code: 'unexpected_field' }]);
      expect(parseLoginEvent(body({}), { unknownFields: 'quarantine' }).ok).toBe(true);
    });

    it.each(['drop', 'quarantine'] as const)('still quarantines prototype-pollution keys with policy %s, and nothing is polluted', (unknownFields) => {
      for (const raw of [`{"__proto__": {"polluted": true}, ${body({}).slice(1)}`, body({ constructor: { prototype: { polluted: true } } }), body({ prototype: {} })]) {
        const result = parseLoginEvent(raw, { unknownFields });
        expect(result.ok).toBe(false);
        expect(result.ok ? [] : result.reasons.map((reason) => reason.code)).toContain('forbidden_key');
      }
      // Nested inside a dropped field, the key is never read at all.
      expect(parseLoginEvent(body({ extra: JSON.parse('{"__proto__": {"polluted": true}}') }), { unknownFields }).ok).toBe(unknownFields === 'drop');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('never lets an unknown field stand in for a defined one', () => {
      const result = parseLoginEvent(JSON.stringify({ ...valid, device_id: undefined, deviceId: '593-47-5928' }));
      expect(result.ok ? [] : result.reasons).toEqual([
        { code: 'missing_field', path: 'device_id' },
        { code: 'unexpected_field', path: 'deviceId' },
      ]);
    });
  });

  it('keeps app_version text lossless and parses dotted numeric versions', () => {
    expect(parseAppVersion('0.60')).toEqual({ major: 0, minor: 60, patch: null });
    expect(parseAppVersion('0.6.0')).toEqual({ major: 0, minor: 6, patch: 0 });
    expect(parseAppVersion('3')).toEqual({ major: 3, minor: null, patch: null });
    expect(parseAppVersion('2.3.0-beta')).toBeNull();
    expect(parseAppVersion('9999999999.1')).toBeNull();
    const result = parseLoginEvent(body({ app_version: '0.60' }));
    expect(result.ok && result.event.appVersion).toBe('0.60');
  });

  it('does not pollute Object.prototype', () => {
    parseLoginEvent('{"__proto__": {"polluted": true}}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
