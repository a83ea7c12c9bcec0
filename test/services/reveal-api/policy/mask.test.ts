import { describe, expect, it } from 'vitest';
import { maskDeviceId, maskIp } from '../../../../services/reveal-api/policy/mask.js';

describe('masking', () => {
  it('keeps the last four alphanumerics of a device id and its separators', () => {
    expect(maskDeviceId('593-47-5928')).toBe('***-**-5928');
    expect(maskDeviceId('AB12-CD34-EF56')).toBe('****-****-EF56');
    // Short ids keep at most half of their characters.
    expect(maskDeviceId('a1-b')).toBe('**-b');
  });

  it('keeps the first two octets of an IPv4 address', () => {
    expect(maskIp('199.172.111.135')).toBe('199.172.*.*');
  });

  it('keeps the first two groups of an IPv6 address', () => {
    expect(maskIp('2001:db8:85a3::8a2e:370:7334')).toBe('2001:db8:*:*:*:*:*:*');
    expect(maskIp('::1')).toBe('0:0:*:*:*:*:*:*');
    expect(maskIp('fe80::')).toBe('fe80:0:*:*:*:*:*:*');
  });
});
