export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 250, maxMs: 20_000 };

/**
 * Exponential back-off with "equal jitter": half the window fixed, half random, so many
 * pollers (and replicas) that failed together do not come back in lock step.
 */
export function backoffMs(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  const window = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return window / 2 + random() * (window / 2);
}
