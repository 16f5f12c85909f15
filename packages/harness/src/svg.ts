/** What the reports' SVG charts share (bench, scale, chaos): the document's frame, a palette, paths, steps, escaping. */

/** One colour a line, in order (matplotlib's tab10: told apart by most readers, colour-blind ones included). */
export const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** The opening of a chart: its `<svg>` element and a white background (the docs may be read on a dark page). */
export function svgStart(width: number, height: number, fontSize: number): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${String(width)}" height="${String(height)}" viewBox="0 0 ${String(width)} ${String(height)}" font-family="sans-serif" font-size="${String(fontSize)}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
}

/** A path's `d` through `points`, coordinates to `digits` decimals. */
export function pathD(points: readonly (readonly [number, number])[], digits: number): string {
  return points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${x.toFixed(digits)},${y.toFixed(digits)}`).join(' ');
}

/** The axis step nearest above `raw` among 1, 2 and 5 times a power of ten. */
export function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-9)));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

export function escapeXml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
