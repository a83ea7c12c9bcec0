/**
 * Bounded LRU set of tokens known to be in the vault already. With realistic duplicate
 * rates most ip/device_id values repeat, and a hit skips both the encryption and the
 * vault insert. Only tokens (never plaintext) are kept. It is a cache, not the truth:
 * a miss just means an insert that ON CONFLICT DO NOTHING absorbs.
 */
export class KnownTokens {
  private readonly entries = new Set<string>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  has(token: string): boolean {
    if (!this.entries.has(token)) return false;
    // Move to the most recently used end (Set keeps insertion order).
    this.entries.delete(token);
    this.entries.add(token);
    return true;
  }

  add(token: string): void {
    if (this.capacity === 0) return;
    this.entries.delete(token);
    this.entries.add(token);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.values().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}
