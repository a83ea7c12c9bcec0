/**
 * Bounded set of tokens known to be in the vault already. With realistic duplicate rates
 * most ip/device_id values repeat, and a hit skips both the encryption and the vault
 * insert. Only tokens (never plaintext) are kept. It is a cache, not the truth: a miss
 * just means an insert that ON CONFLICT DO NOTHING absorbs.
 *
 * Approximate LRU with two generations: hits are promoted into the current generation,
 * and when it is full the previous one is dropped whole. O(1) without touching a
 * recency list on every hit (a strict LRU's delete+re-insert per hit showed in profiles).
 */
export class KnownTokens {
  private current = new Set<string>();
  private previous = new Set<string>();
  private readonly generationSize: number;

  constructor(readonly capacity: number) {
    this.generationSize = Math.max(1, Math.floor(capacity / 2));
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  has(token: string): boolean {
    if (this.current.has(token)) return true;
    if (!this.previous.has(token)) return false;
    this.add(token);
    return true;
  }

  add(token: string): void {
    if (this.capacity === 0 || this.current.has(token)) return;
    if (this.current.size >= this.generationSize) {
      this.previous = this.current;
      this.current = new Set();
    }
    this.current.add(token);
  }

  clear(): void {
    this.current.clear();
    this.previous.clear();
  }
}
