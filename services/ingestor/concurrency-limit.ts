/**
 * How many receives to keep in flight, following latency instead of a fixed number: additive
 * increase while there is a backlog, the limit is the constraint, throughput keeps up with each
 * step and the round trip has not inflated (the queue answers as fast as with fewer receives:
 * more of them would only wait in its line); multiplicative decrease when something pushes back
 * (a failed receive, a batch the handler could not store, memory); a halving when receives come
 * back empty (no backlog), and one less when the round trip has grown far above its baseline.
 * Little's law is the reason: a queue answering in R seconds with B messages per receive gives
 * at most limit × B / R messages per second, so the right limit grows with the round trip.
 *
 * Decisions are taken once per window (as many completed receives as the limit was when the
 * window began, about one round trip), and at most one decrease per window, so one outage
 * seen by every receive in flight halves the limit once, not once per receive (as TCP's
 * congestion control reacts once per round trip). No timers, no I/O: the poller reports
 * events and applies the result.
 */
export interface ConcurrencyLimitOptions {
  min: number;
  max: number;
  initial: number;
}

export type LimitChangeReason = 'backlog' | 'idle' | 'latency' | 'receive_error' | 'handler_error' | 'memory';

export interface LimitChange {
  limit: number;
  previous: number;
  reason: LimitChangeReason;
}

/** A window's throughput may dip this much below the previous one and still count as keeping up (measurement noise). */
const KEEPING_UP = 0.9;
/** Factor applied on a failure (receive, handler) and on memory pressure. */
const DECREASE_ON_ERROR = 0.5;
const DECREASE_ON_MEMORY = 0.75;
const DECREASE_WHEN_IDLE = 0.5;
/**
 * A window's mean round trip above INFLATED × the baseline + SLACK_MS stops growth (the queue
 * makes receives wait in its line: more of them would not add throughput); above CONGESTED × the
 * baseline + 2 × SLACK_MS the limit gives one back. The slack keeps the jitter of a fast server
 * (the emulator answers on a 10 ms tick) from reading as queueing.
 */
const INFLATED = 2;
const CONGESTED = 4;
const SLACK_MS = 10;
/** The baseline is the lowest window mean of the last BASELINE_WINDOWS windows: an old lucky low expires. */
const BASELINE_WINDOWS = 32;

interface Window {
  startedAt: number;
  size: number;
  completed: number;
  messages: number;
  notFull: number;
  empty: number;
  /** Sum of the round trips of full receives (ms), and how many. */
  fullRttSum: number;
  fullCount: number;
  /** The limit was the constraint at some start in this window (every slot taken). */
  saturated: boolean;
  decreased: boolean;
}

export class ConcurrencyLimit {
  private current: number;
  private window: Window;
  /** Messages per second of the last window that ended without a decrease. */
  private lastRate: number | undefined;
  /** Mean round trips of full receives of the last windows: their lowest is the unloaded round trip. */
  private readonly recentRtts: number[] = [];

  constructor(
    readonly options: ConcurrencyLimitOptions,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(options.min >= 1 && options.min <= options.initial && options.initial <= options.max)) {
      throw new RangeError(`concurrency limit needs 1 <= min (${options.min}) <= initial (${options.initial}) <= max (${options.max})`);
    }
    this.current = options.initial;
    this.window = this.newWindow(false);
  }

  get value(): number {
    return this.current;
  }

  /** A receive starts while `inFlight` receives (itself included) are in flight. */
  started(inFlight: number): void {
    if (inFlight >= this.current) this.window.saturated = true;
  }

  /**
   * A receive completed with `messages` after `rttMs` (full: as many as asked for, so more are
   * waiting; only full receives measure the round trip: a partial one waited in a long poll).
   * `underPressure` is asked at the end of a window: true when memory is short.
   */
  completed(messages: number, full: boolean, rttMs: number, underPressure: () => boolean = () => false): LimitChange | undefined {
    const window = this.window;
    window.completed += 1;
    window.messages += messages;
    if (full) {
      window.fullRttSum += rttMs;
      window.fullCount += 1;
    } else window.notFull += 1;
    if (messages === 0) window.empty += 1;
    if (window.completed < window.size) return undefined;

    const elapsed = Math.max(this.now() - window.startedAt, 1e-3);
    const rate = window.messages / elapsed;
    const keepingUp = this.lastRate === undefined || rate >= this.lastRate * KEEPING_UP;
    const { inflated, congested } = this.queueing(window);
    let change: LimitChange | undefined;
    if (underPressure()) change = this.set(Math.floor(this.current * DECREASE_ON_MEMORY), 'memory');
    else if (window.empty > 0) change = this.set(Math.floor(this.current * DECREASE_WHEN_IDLE), 'idle');
    else if (window.notFull === 0 && congested) change = this.set(this.current - 1, 'latency');
    else if (window.notFull === 0 && window.saturated && keepingUp && !inflated) change = this.set(this.current + 1, 'backlog');
    this.lastRate = change === undefined || change.reason === 'backlog' ? rate : undefined;
    this.window = this.newWindow(false);
    return change;
  }

  /** Whether this window's round trip shows receives waiting at the queue; records it for the baseline. */
  private queueing(window: Window): { inflated: boolean; congested: boolean } {
    if (window.fullCount === 0) return { inflated: false, congested: false };
    const rtt = window.fullRttSum / window.fullCount;
    const baseline = Math.min(rtt, ...this.recentRtts);
    this.recentRtts.push(rtt);
    if (this.recentRtts.length > BASELINE_WINDOWS) this.recentRtts.shift();
    return { inflated: rtt > INFLATED * baseline + SLACK_MS, congested: rtt > CONGESTED * baseline + 2 * SLACK_MS };
  }

  /** A receive or a batch failed: at most one decrease per window. */
  pushback(reason: 'receive_error' | 'handler_error'): LimitChange | undefined {
    if (this.window.decreased) return undefined;
    const change = this.set(Math.floor(this.current * DECREASE_ON_ERROR), reason);
    this.lastRate = undefined;
    this.window = this.newWindow(true);
    return change;
  }

  private set(next: number, reason: LimitChangeReason): LimitChange | undefined {
    const bounded = Math.min(this.options.max, Math.max(this.options.min, next));
    if (bounded === this.current) return undefined;
    const previous = this.current;
    this.current = bounded;
    return { limit: bounded, previous, reason };
  }

  private newWindow(decreased: boolean): Window {
    return { startedAt: this.now(), size: this.current, completed: 0, messages: 0, notFull: 0, empty: 0, fullRttSum: 0, fullCount: 0, saturated: false, decreased };
  }
}
