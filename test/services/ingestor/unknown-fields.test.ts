import { describe, expect, it } from 'vitest';
import { BoundedNames, countNames, MAX_FIELD_NAMES, OTHER_FIELDS } from '../../../services/ingestor/unknown-fields.js';

describe('BoundedNames', () => {
  it('admits the first 50 distinct names and lumps every later one into _other', () => {
    const names = new BoundedNames();
    const counts: Record<string, number> = {};
    const many = Array.from({ length: MAX_FIELD_NAMES + 25 }, (_, index) => `field_${index}`);
    countNames(counts, many, names);
    countNames(counts, many, names);
    expect(Object.keys(counts)).toHaveLength(MAX_FIELD_NAMES + 1);
    expect(counts.field_0).toBe(2);
    expect(counts[`field_${MAX_FIELD_NAMES - 1}`]).toBe(2);
    expect(counts[`field_${MAX_FIELD_NAMES}`]).toBeUndefined();
    expect(counts[OTHER_FIELDS]).toBe(50);
  });

  it('says when a name is seen for the first time (once)', () => {
    const names = new BoundedNames(1);
    expect(names.admit('campaign')).toEqual({ label: 'campaign', first: true });
    expect(names.admit('campaign')).toEqual({ label: 'campaign', first: false });
    expect(names.admit('other')).toEqual({ label: OTHER_FIELDS, first: false });
  });
});
