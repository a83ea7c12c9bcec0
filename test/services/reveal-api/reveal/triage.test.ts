import { describe, expect, it } from 'vitest';
import { triage, triageTokens } from '../../../../services/reveal-api/reveal/triage.js';

const ip = (n: number) => `ip_v1_${String(n).padStart(43, 'a')}`;
const device = (n: number) => `device_id_v1_${String(n).padStart(43, 'b')}`;

describe('triageTokens', () => {
  it('answers each token once, in the order first asked, and judges it against the grants', () => {
    const judged = triageTokens([ip(1), device(2), '199.172.111.135', ip(1), device(3), 'ip_v1_short'], { ip: 'plain' });
    expect(judged.requested).toEqual([
      { token: ip(1), field: 'ip' },
      { token: device(2), field: 'device_id' },
      { token: '199.172.111.135', field: undefined },
      { token: device(3), field: 'device_id' },
      { token: 'ip_v1_short', field: undefined },
    ]);
    // A raw value is never named in the audit row: only well-formed tokens are.
    expect(judged.wellFormed).toEqual([ip(1), device(2), device(3)]);
    expect(judged.permitted).toEqual([{ token: ip(1), field: 'ip', redaction: 'plain' }]);
    expect(judged.permittedFields).toEqual({ ip: 1 });
    expect(judged.tally).toEqual({ permitted: 1, forbidden: 2, invalid: 2 });
  });

  it('carries each permitted token\'s redaction from the grants', () => {
    const judged = triageTokens([ip(1), device(2)], { ip: 'masked', device_id: 'plain' });
    expect(judged.permitted).toEqual([
      { token: ip(1), field: 'ip', redaction: 'masked' },
      { token: device(2), field: 'device_id', redaction: 'plain' },
    ]);
    expect(judged.tally).toEqual({ permitted: 2, forbidden: 0, invalid: 0 });
  });

  it('permits nothing without grants', () => {
    const judged = triageTokens([ip(1), 'not a token'], {});
    expect(judged.permitted).toEqual([]);
    expect(judged.tally).toEqual({ permitted: 0, forbidden: 1, invalid: 1 });
  });
});

describe('triage of tokens whose field is known', () => {
  it('takes the field as given (a person row\'s column), not from the token', () => {
    const judged = triage(
      [
        { token: ip(1), field: 'ip' },
        { token: device(2), field: 'device_id' },
      ],
      { device_id: 'plain' },
    );
    expect(judged.permitted).toEqual([{ token: device(2), field: 'device_id', redaction: 'plain' }]);
    expect(judged.tally).toEqual({ permitted: 1, forbidden: 1, invalid: 0 });
  });
});
