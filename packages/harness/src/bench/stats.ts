/** Medians and per-round ratios for the report (the verdicts use their own strict versions, which refuse gaps). */

/** The median of the finite values; NaN when there are none. */
export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
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

/** 12,345 with `digits` decimals, or an en dash for a figure that is missing. */
export function formatNumber(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A ratio as "0.92 ×", or an en dash. */
export function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)} ×` : '–';
}
