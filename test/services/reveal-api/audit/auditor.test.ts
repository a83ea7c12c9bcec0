import { describe, expect, it } from 'vitest';
import { outcomeOf } from '../../../../services/reveal-api/audit/auditor.js';

describe('outcomeOf', () => {
  it.each([
    [{ permitted: 3, forbidden: 0, invalid: 0 }, 'allowed'],
    [{ permitted: 1, forbidden: 1, invalid: 0 }, 'partial'],
    [{ permitted: 1, forbidden: 0, invalid: 2 }, 'partial'],
    [{ permitted: 0, forbidden: 2, invalid: 0 }, 'denied'],
    [{ permitted: 0, forbidden: 1, invalid: 1 }, 'denied'],
    [{ permitted: 0, forbidden: 0, invalid: 1 }, 'invalid'],
  ] as const)('judges %o as %s', (tally, outcome) => {
    expect(outcomeOf(tally)).toBe(outcome);
  });
});
