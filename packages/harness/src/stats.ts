/**
 * The harness's statistics, one definition each: nearest-rank percentiles (no interpolation, so every figure is a
 * value that was really measured: p50 of n sorted values is the ⌈n/2⌉-th), the median, and medians of per-round ratios.
 */

/** Latency figures of one run; NaN when there were no samples (a gap, never a zero). */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** The same figures for JSON reports: null where there were no samples. */
export interface Percentiles {
  count: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/** A numeric sort that does not box: the load generators sort hundreds of thousands of samples. */
function sorted(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/** The nearest-rank `p` percentile (0 < p ≤ 100) of ascending values; NaN when there are none. */
function rank(ascending: Float64Array, p: number): number {
  if (ascending.length === 0) return Number.NaN;
  return ascending[Math.min(ascending.length - 1, Math.max(0, Math.ceil((p / 100) * ascending.length) - 1))] as number;
}

/** Nearest-rank percentile `p` (0 < p ≤ 100) of `values`; NaN when there are none. */
export function percentile(values: ArrayLike<number>, p: number): number {
  return rank(sorted(values), p);
}

export function summarize(values: ArrayLike<number>): LatencySummary {
  const s = sorted(values);
  return { count: s.length, p50: rank(s, 50), p90: rank(s, 90), p99: rank(s, 99), max: rank(s, 100) };
}

export function percentiles(values: ArrayLike<number>): Percentiles {
  const { count, p50, p99, max } = summarize(values);
  if (count === 0) return { count: 0, p50: null, p99: null, max: null };
  return { count, p50, p99, max };
}

/** The median of the finite values (the mean of the middle two for an even count); NaN when there are none. */
export function median(values: readonly number[]): number {
  const v = sorted(values.filter((x) => Number.isFinite(x)));
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

/** Median over rounds of a per-round ratio: each ratio compares systems measured minutes apart, not runs apart. */
export function ratioByRound<T extends { round: number }>(a: T[], b: T[], value: (row: T) => number): number {
  const ratios: number[] = [];
  for (const row of a) {
    const other = b.find((x) => x.round === row.round);
    if (other) ratios.push(value(row) / value(other));
  }
  return median(ratios);
}
