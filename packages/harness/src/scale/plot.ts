/**
 * docs/scale.svg: connections per node over the join/drain phase (each node a thin line, the settled nodes' mean and
 * its +15 % limit on top), and below it the active pairs' cross-node latency per bucket; joins and drains marked.
 */
import type { Figures } from './analysis.js';
import type { ScaleResult } from './run.js';
import { MAX_SPREAD_OVER_MEAN } from './verdict.js';
import { COLORS, niceStep, pathD, svgStart } from '../svg.js';

const WIDTH = 900;
const LEFT = 60;
const RIGHT = 30;

interface Panel {
  top: number;
  height: number;
  maxY: number;
  x(t: number): number;
  y(v: number): number;
}

function panel(top: number, height: number, maxT: number, maxY: number): Panel {
  return {
    top,
    height,
    maxY,
    x: (t) => LEFT + (Math.max(0, t) / maxT) * (WIDTH - LEFT - RIGHT),
    y: (v) => top + (1 - Math.min(v, maxY) / maxY) * height,
  };
}

/** Latency spans milliseconds to seconds: a log scale from 1 ms (the axis's 0) to the next power of ten above the worst value. */
function logPanel(top: number, height: number, maxT: number, worst: number): Panel {
  const decades = Math.max(1, Math.ceil(Math.log10(Math.max(worst, 10))));
  return {
    top,
    height,
    maxY: 10 ** decades,
    x: (t) => LEFT + (Math.max(0, t) / maxT) * (WIDTH - LEFT - RIGHT),
    y: (v) => top + (1 - Math.min(Math.max(Math.log10(Math.max(v, 1)), 0), decades) / decades) * height,
  };
}

const f1 = (n: number): string => n.toFixed(0);

function axes(p: Panel, maxT: number, label: string, unit: string, log = false): string[] {
  const parts = [
    `<line x1="${String(LEFT)}" y1="${f1(p.y(0))}" x2="${String(WIDTH - RIGHT)}" y2="${f1(p.y(0))}" stroke="black"/>`,
    `<line x1="${String(LEFT)}" y1="${String(p.top)}" x2="${String(LEFT)}" y2="${f1(p.y(0))}" stroke="black"/>`,
    `<text x="${String(LEFT)}" y="${String(p.top - 6)}" font-weight="bold">${label}</text>`,
  ];
  const step = niceStep(p.maxY / 5);
  const ticks: number[] = [];
  if (log) for (let v = 1; v <= p.maxY; v *= 10) ticks.push(v);
  else for (let v = 0; v <= p.maxY + 1e-9; v += step) ticks.push(v);
  for (const v of ticks) {
    parts.push(`<line x1="${String(LEFT)}" y1="${f1(p.y(v))}" x2="${String(WIDTH - RIGHT)}" y2="${f1(p.y(v))}" stroke="#eee"/>`);
    const label = unit === ' ms' && v >= 1000 ? `${String(v / 1000)} s` : `${String(Math.round(v * 100) / 100)}${unit}`;
    parts.push(`<text x="${String(LEFT - 6)}" y="${f1(p.y(v) + 4)}" text-anchor="end">${label}</text>`);
  }
  const tStep = maxT > 60 ? 20 : maxT > 20 ? 5 : 1;
  for (let t = 0; t <= maxT; t += tStep) parts.push(`<text x="${f1(p.x(t))}" y="${f1(p.y(0) + 14)}" text-anchor="middle">${String(t)}s</text>`);
  return parts;
}

function markers(result: ScaleResult, p: Panel): string[] {
  return result.timeline
    .filter((e) => e.event === 'join' || e.event === 'drain')
    .map((e) => {
      const x = f1(p.x((e.at - result.trafficStartedAt) / 1000));
      const color = e.event === 'join' ? '#2ca02c' : '#d62728';
      return `<line x1="${x}" y1="${String(p.top)}" x2="${x}" y2="${f1(p.y(0))}" stroke="${color}" stroke-opacity="0.5" stroke-dasharray="3 3"/>`;
    });
}

const path = (points: [number, number][]): string => pathD(points, 0);

function connectionsPanel(result: ScaleResult, f: Figures, p: Panel): string[] {
  const parts: string[] = [];
  const inPhase = result.nodeSamples.filter((s) => s.at >= result.trafficStartedAt && s.at <= result.trafficEndedAt);
  // At most ~70 points a line: the lines stay readable and the file small.
  const every = Math.max(1, Math.round(inPhase.length / 70));
  const samples = inPhase.filter((_, i) => i % every === 0 || i === inPhase.length - 1);
  const ids = new Set<string>();
  for (const s of samples) for (const id of Object.keys(s.connections)) ids.add(id);
  [...ids].forEach((id, i) => {
    const points: [number, number][] = samples
      .filter((s) => s.connections[id] !== undefined)
      .map((s) => [p.x((s.at - result.trafficStartedAt) / 1000), p.y(s.connections[id] ?? 0)]);
    if (points.length > 1) parts.push(`<path d="${path(points)}" fill="none" stroke="${COLORS[i % COLORS.length] ?? '#888'}" stroke-width="1" stroke-opacity="0.6"/>`);
  });
  const mean: [number, number][] = f.spread.points.map((q) => [p.x(q.at), p.y(q.mean)]);
  const limit: [number, number][] = f.spread.points.map((q) => [p.x(q.at), p.y(q.mean * (1 + MAX_SPREAD_OVER_MEAN))]);
  if (mean.length > 1) {
    parts.push(`<path d="${path(mean)}" fill="none" stroke="black" stroke-width="2.5"/>`);
    parts.push(`<path d="${path(limit)}" fill="none" stroke="black" stroke-width="1.5" stroke-dasharray="6 4"/>`);
  }
  return parts;
}

function latencyPanel(result: ScaleResult, p: Panel): string[] {
  const buckets = result.load.latency.buckets.filter((b) => b.p50 !== null && b.p99 !== null);
  const half = result.config.bucketMs / 2000;
  const p50: [number, number][] = buckets.map((b) => [p.x(b.at + half), p.y(b.p50 as number)]);
  const p99: [number, number][] = buckets.map((b) => [p.x(b.at + half), p.y(b.p99 as number)]);
  return [
    `<path d="${path(p99)}" fill="none" stroke="#d62728" stroke-width="2"/>`,
    `<path d="${path(p50)}" fill="none" stroke="#1f77b4" stroke-width="2"/>`,
    ...p99.map(([x, y]) => `<circle cx="${f1(x)}" cy="${f1(y)}" r="2.5" fill="#d62728"/>`),
    ...p50.map(([x, y]) => `<circle cx="${f1(x)}" cy="${f1(y)}" r="2.5" fill="#1f77b4"/>`),
  ];
}

export function renderSvg(result: ScaleResult, f: Figures): string {
  const maxT = Math.max(1, (result.trafficEndedAt - result.trafficStartedAt) / 1000);
  const peak = Math.max(1, ...result.nodeSamples.filter((s) => s.at >= result.trafficStartedAt).flatMap((s) => Object.values(s.connections)));
  const top = panel(30, 300, maxT, niceStep(peak / 5) * Math.ceil((peak * 1.1) / niceStep(peak / 5)));
  const worstP99 = Math.max(1, ...result.load.latency.buckets.map((b) => b.p99 ?? 0));
  const bottom = logPanel(380, 180, maxT, worstP99);
  const height = 620;
  return [
    ...svgStart(WIDTH, height, 11),
    ...axes(top, maxT, 'Connections per node (thin lines); settled nodes\' mean (thick) and mean + 15 % (dashed)', ''),
    ...markers(result, top),
    ...connectionsPanel(result, f, top),
    ...axes(bottom, maxT, 'Active pairs, cross-node latency per bucket (log scale): p50 (blue), p99 (red)', ' ms', true),
    ...markers(result, bottom),
    ...latencyPanel(result, bottom),
    `<text x="${String(LEFT)}" y="${String(height - 12)}">seconds since the join/drain phase started; green dashes: a node joins, red dashes: the oldest node drains</text>`,
    '</svg>',
    '',
  ].join('\n');
}
