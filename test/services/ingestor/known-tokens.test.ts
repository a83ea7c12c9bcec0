import { describe, expect, it } from 'vitest';
import { KnownTokens } from '../../../services/ingestor/known-tokens.js';

describe('known-token cache', () => {
  it('never holds more than its capacity', () => {
    const known = new KnownTokens(100);
    for (let i = 0; i < 1000; i += 1) known.add(`t${i}`);
    expect(known.size).toBeLessThanOrEqual(100);
    expect(known.has('t999')).toBe(true);
    expect(known.has('t0')).toBe(false);
  });

  it('keeps tokens that keep being used', () => {
    const known = new KnownTokens(10);
    known.add('hot');
    for (let i = 0; i < 100; i += 1) {
      known.add(`cold${i}`);
      expect(known.has('hot')).toBe(true);
    }
  });

  it('stores nothing with capacity 0 and forgets everything on clear', () => {
    const off = new KnownTokens(0);
    off.add('a');
    expect(off.has('a')).toBe(false);
    const known = new KnownTokens(10);
    known.add('a');
    known.clear();
    expect(known.has('a')).toBe(false);
  });
});
