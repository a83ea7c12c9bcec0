import type { Histogram } from 'prom-client';

export interface HistogramSnapshot {
  count: number;
  sum: number;
  /** Cumulative count per upper bound (seconds). */
  buckets: Map<number, number>;
}

export async function snapshot(histogram: Histogram): Promise<HistogramSnapshot> {
  const data = await histogram.get();
  const buckets = new Map<number, number>();
  let count = 0;
  let sum = 0;
  for (const value of data.values) {
    if (value.metricName?.endsWith('_bucket')) {
      const le = value.labels.le;
      buckets.set(le === '+Inf' || le === undefined ? Number.POSITIVE_INFINITY : Number(le), value.value);
    } else if (value.metricName?.endsWith('_count')) count = value.value;
    else if (value.metricName?.endsWith('_sum')) sum = value.value;
  }
  return { count, sum, buckets };
}

/** Mean and an upper bound of the 99th percentile (bucket resolution) of what was observed between two snapshots. */
export function between(before: HistogramSnapshot, after: HistogramSnapshot): { count: number; meanMs: number; p99AtMostMs: number } {
  const count = after.count - before.count;
  const meanMs = count === 0 ? 0 : ((after.sum - before.sum) / count) * 1000;
  let p99AtMostMs = Number.POSITIVE_INFINITY;
  for (const [le, cumulative] of [...after.buckets].sort(([a], [b]) => a - b)) {
    if (cumulative - (before.buckets.get(le) ?? 0) >= count * 0.99) {
      p99AtMostMs = le * 1000;
      break;
    }
  }
  return { count, meanMs, p99AtMostMs };
}
