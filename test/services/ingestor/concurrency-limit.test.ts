import { describe, expect, it } from 'vitest';
import { ConcurrencyLimit, type LimitChange } from '../../../services/ingestor/concurrency-limit.js';

/** A limit on a clock the test moves: every decision is reproducible. */
function limitOf(options: { min?: number; max?: number; initial?: number } = {}) {
  let now = 0;
  const limit = new ConcurrencyLimit({ min: options.min ?? 1, max: options.max ?? 8, initial: options.initial ?? 1 }, () => now);
  /**
   * One window: `limit.value` receives, all started at full concurrency, each `rttMs` long,
   * completing over `elapsedMs` (receives overlap windows: default one round trip).
   */
  const window = (receive: { messages?: number; rttMs?: number; elapsedMs?: number; saturated?: boolean; pressure?: boolean } = {}): LimitChange | undefined => {
    const size = limit.value;
    let change: LimitChange | undefined;
    for (let index = 0; index < size; index += 1) limit.started(receive.saturated === false ? 0 : size);
    now += receive.elapsedMs ?? receive.rttMs ?? 10;
    for (let index = 0; index < size; index += 1) {
      const messages = receive.messages ?? 10;
      change = limit.completed(messages, messages === 10, receive.rttMs ?? 10, () => receive.pressure === true) ?? change;
    }
    return change;
  };
  return { limit, window };
}

describe('receive concurrency limit', () => {
  it('grows by one per window while every receive comes back full, every slot is taken and the round trip stays at its baseline, up to max', () => {
    const { limit, window } = limitOf({ max: 5 });
    const seen = [limit.value];
    for (let step = 0; step < 8; step += 1) {
      window();
      seen.push(limit.value);
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 5, 5, 5, 5]);
  });

  it('does not grow without a backlog (partial receives) or when receives were not what held it back', () => {
    const { limit, window } = limitOf({ initial: 3 });
    window({ messages: 4 });
    window({ saturated: false });
    expect(limit.value).toBe(3);
  });

  it('stops growing when the round trip doubles (receives wait at the queue) and gives one back when it quadruples', () => {
    // Throughput keeps up in every window (they complete 20 ms apart): only the round trip differs.
    const { limit, window } = limitOf({ initial: 4 });
    window({ rttMs: 20, elapsedMs: 20 });
    expect(limit.value).toBe(5);
    // Jitter of a fast server is not queueing: up to 2 × 20 + 10 ms of slack.
    window({ rttMs: 45, elapsedMs: 20 });
    expect(limit.value).toBe(6);
    window({ rttMs: 55, elapsedMs: 20 });
    expect(limit.value).toBe(6);
    expect(window({ rttMs: 110, elapsedMs: 20 })).toEqual({ limit: 5, previous: 6, reason: 'latency' });
    // And when throughput falls as the limit grows, it stops growing even with a flat round trip.
    const flat = limitOf({ initial: 4 });
    flat.window({ rttMs: 20, elapsedMs: 20 });
    flat.window({ rttMs: 20, elapsedMs: 40 });
    expect(flat.limit.value).toBe(5);
  });

  it('halves on an empty receive (no backlog) and on memory pressure, never below min', () => {
    const { limit, window } = limitOf({ min: 2, initial: 8, max: 8 });
    expect(window({ messages: 0 })).toEqual({ limit: 4, previous: 8, reason: 'idle' });
    expect(window({ pressure: true })).toEqual({ limit: 3, previous: 4, reason: 'memory' });
    window({ messages: 0 });
    window({ messages: 0 });
    expect(limit.value).toBe(2);
  });

  it('halves once per window on failures, however many receives or batches fail in it', () => {
    const { limit, window } = limitOf({ initial: 8, max: 16 });
    expect(limit.pushback('handler_error')).toEqual({ limit: 4, previous: 8, reason: 'handler_error' });
    expect(limit.pushback('handler_error')).toBeUndefined();
    expect(limit.pushback('receive_error')).toBeUndefined();
    // The next window (partial receives: no growth) may decrease again.
    window({ messages: 4 });
    expect(limit.pushback('receive_error')).toEqual({ limit: 2, previous: 4, reason: 'receive_error' });
    window({ messages: 4 });
    expect(limit.pushback('handler_error')).toEqual({ limit: 1, previous: 2, reason: 'handler_error' });
    window({ messages: 4 });
    expect(limit.pushback('handler_error')).toBeUndefined();
    expect(limit.value).toBe(1);
    // After the failures, additive increase resumes with the backlog.
    window();
    expect(limit.value).toBe(2);
  });

  it('refuses bounds that contradict each other', () => {
    expect(() => new ConcurrencyLimit({ min: 4, max: 2, initial: 3 })).toThrow(RangeError);
    expect(() => new ConcurrencyLimit({ min: 0, max: 2, initial: 1 })).toThrow(RangeError);
  });
});
