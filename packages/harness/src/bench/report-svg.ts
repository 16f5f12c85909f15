/** The latency-over-load plot (docs/benchmarks.svg) from the paced sweeps of one bench run. */
import { shapeKey, shapeLabel, type BenchResults, type Scenario, type SystemName } from './results.js';
import { formatNumber } from '../markdown.js';
import { median } from '../stats.js';
import { svgStart } from '../svg.js';

interface Series {
  label: string;
  color: string;
  points: { rate: number; p50: number; p99: number }[];
}

/** The first shape's paced sweep: the only one with every step (the other shapes run the judged step alone). */
function seriesOf(results: BenchResults): Series[] {
  const shape = results.config.shapes[0];
  if (!shape) return [];
  const key = shapeKey(shape);
  const defs: { system: SystemName; scenario: Scenario; label: string; color: string }[] = [
    { system: 'ours', scenario: 'relay-1', label: 'ours, one node', color: '#1f77b4' },
    { system: 'ours', scenario: 'relay-2', label: 'ours, across 2 nodes', color: '#9467bd' },
    { system: 'peerjs', scenario: 'relay-1', label: 'PeerJS server', color: '#d62728' },
    { system: 'ws', scenario: 'relay-1', label: 'bare ws relay', color: '#2ca02c' },
    { system: 'sockjs', scenario: 'relay-1', label: 'bare sockjs relay', color: '#ff7f0e' },
  ];
  return defs
    .map((d) => ({
      label: d.label,
      color: d.color,
      points: shape.fractions
        .map((fraction) => {
          const rows = results.sweep.filter((r) => r.system === d.system && r.scenario === d.scenario && r.shape === key && r.fraction === fraction);
          return { rate: median(rows.map((r) => r.rate)), p50: median(rows.map((r) => r.latencyMs.p50)), p99: median(rows.map((r) => r.latencyMs.p99)) };
        })
        .filter((p) => Number.isFinite(p.rate) && Number.isFinite(p.p99)),
    }))
    .filter((s) => s.points.length > 0);
}

export function renderSvg(results: BenchResults): string {
  const series = seriesOf(results);
  const first = results.config.shapes[0] ? shapeLabel(results.config.shapes[0]) : 'no shape';
  const steps = results.config.shapes[0]?.fractions.map((x) => String(x * 100)).join(', ') ?? '';
  const W = 760;
  const H = 440;
  const m = { left: 70, right: 190, top: 40, bottom: 55 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const all = series.flatMap((s) => s.points);
  const maxRate = Math.max(1, ...all.map((p) => p.rate)) * 1.05;
  const lo = Math.max(0.01, Math.min(...all.map((p) => p.p50)));
  const hi = Math.max(lo * 10, ...all.map((p) => p.p99));
  const yMin = Math.pow(10, Math.floor(Math.log10(lo)));
  const yMax = Math.pow(10, Math.ceil(Math.log10(hi)));
  const sx = (v: number): number => m.left + (v / maxRate) * pw;
  const sy = (v: number): number => m.top + ph - ((Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * ph;
  const out: string[] = [];
  out.push(...svgStart(W, H, 12));
  out.push(`<text x="${String(m.left)}" y="22" font-size="14" font-weight="bold">Relay latency over load (200 B, ${first}, median of ${String(results.config.rounds)} rounds)</text>`);
  for (let d = yMin; d <= yMax * 1.0001; d *= 10) {
    const y = sy(d).toFixed(1);
    out.push(`<line x1="${String(m.left)}" x2="${String(m.left + pw)}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${String(m.left - 6)}" y="${y}" text-anchor="end" dominant-baseline="middle">${d >= 1 ? String(d) : d.toPrecision(1)}</text>`);
  }
  const step = Math.pow(10, Math.floor(Math.log10(maxRate / 2)));
  const tick = maxRate / step > 8 ? step * 2 : step;
  for (let v = 0; v <= maxRate; v += tick) {
    const xx = sx(v).toFixed(1);
    out.push(`<line x1="${xx}" x2="${xx}" y1="${String(m.top)}" y2="${String(m.top + ph)}" stroke="#eee"/>`);
    out.push(`<text x="${xx}" y="${String(m.top + ph + 16)}" text-anchor="middle">${formatNumber(v)}</text>`);
  }
  out.push(`<rect x="${String(m.left)}" y="${String(m.top)}" width="${String(pw)}" height="${String(ph)}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${String(m.left + pw / 2)}" y="${String(H - 12)}" text-anchor="middle">delivered messages/s (paced at ${steps} % of each system's maximum)</text>`);
  out.push(`<text transform="translate(18 ${String(m.top + ph / 2)}) rotate(-90)" text-anchor="middle">end-to-end latency, ms (log)</text>`);
  series.forEach((s, i) => {
    const path99 = s.points.map((p) => `${sx(p.rate).toFixed(1)},${sy(p.p99).toFixed(1)}`).join(' ');
    const path50 = s.points.map((p) => `${sx(p.rate).toFixed(1)},${sy(p.p50).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${path99}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    out.push(`<polyline points="${path50}" fill="none" stroke="${s.color}" stroke-width="1.5" stroke-dasharray="5 4"/>`);
    for (const p of s.points) out.push(`<circle cx="${sx(p.rate).toFixed(1)}" cy="${sy(p.p99).toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = m.top + 10 + i * 20;
    out.push(`<line x1="${String(W - m.right + 15)}" x2="${String(W - m.right + 40)}" y1="${String(ly)}" y2="${String(ly)}" stroke="${s.color}" stroke-width="2"/>`);
    out.push(`<text x="${String(W - m.right + 46)}" y="${String(ly)}" dominant-baseline="middle">${s.label}</text>`);
  });
  const ly = m.top + 10 + series.length * 20 + 10;
  out.push(`<text x="${String(W - m.right + 15)}" y="${String(ly)}">solid: p99, dashed: p50</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
