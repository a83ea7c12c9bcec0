/** Distinct field names a label (or a log line) may carry before the rest are lumped together. */
export const MAX_FIELD_NAMES = 50;
/** Every name beyond the first MAX_FIELD_NAMES. */
export const OTHER_FIELDS = '_other';

/**
 * Keeps a label set bounded: the first `limit` distinct names are themselves, every later one
 * is OTHER_FIELDS. A producer (or an attacker) sending a new field name per message cannot
 * grow the metric series or the log lines without bound.
 */
export class BoundedNames {
  private readonly seen = new Set<string>();

  constructor(private readonly limit = MAX_FIELD_NAMES) {}

  /** The label for `name`, and whether this call admitted it (first sighting). */
  admit(name: string): { label: string; first: boolean } {
    if (this.seen.has(name)) return { label: name, first: false };
    if (this.seen.size >= this.limit) return { label: OTHER_FIELDS, first: false };
    this.seen.add(name);
    return { label: name, first: true };
  }
}

/** Adds `names` (one message's dropped fields) to per-name counts, bounded by `names`' budget. */
export function countNames(counts: Record<string, number>, names: readonly string[], budget: BoundedNames): void {
  for (const name of names) {
    const { label } = budget.admit(name);
    counts[label] = (counts[label] ?? 0) + 1;
  }
}
