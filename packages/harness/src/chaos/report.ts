import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { receiptsSection } from './report-receipts.js';
import { roomsSection } from './report-rooms.js';
import { table } from '../markdown.js';
import { COLORS, escapeXml, pathD, svgStart } from '../svg.js';
import type { ChaosResult } from './run.js';
import type { Percentiles } from '../stats.js';
import type { NodeSample } from '../sampler.js';
import { verdict } from './verdict.js';

const DASHES = ['', '', '', '8 4', '3 3', '10 3 2 3'];

function nodeIds(samples: NodeSample[]): string[] {
  const ids = new Set<string>();
  for (const s of samples) for (const id of Object.keys(s.connections)) ids.add(id);
  return [...ids].sort((a, b) => Number(a.replace(/\D+/g, '')) - Number(b.replace(/\D+/g, '')) || a.localeCompare(b));
}

const ms = (value: number | null): string => (value === null ? '–' : `${String(Math.round(value))} ms`);
const answer = (p: Percentiles): string => (p.count === 0 ? '–' : `${ms(p.p50)} / ${ms(p.p99)} / ${ms(p.max)}`);

/** Sessions per node over time as a line chart, with the faults as labelled vertical lines. */
export function renderSvg(result: ChaosResult): string {
  const samples = result.samples;
  const ids = nodeIds(samples);
  const width = 900;
  const height = 360;
  const left = 50;
  const right = 120;
  const top = 20;
  const bottom = 40;
  const maxT = Math.max(1, ...samples.map((s) => s.at / 1000));
  const peak = Math.max(1, ...samples.flatMap((s) => Object.values(s.connections)));
  const maxY = Math.ceil((peak * 1.15) / 5) * 5;
  const x = (t: number): number => left + (t / maxT) * (width - left - right);
  const y = (v: number): number => top + (1 - v / maxY) * (height - top - bottom);
  const parts: string[] = [
    ...svgStart(width, height, 11),
    `<line x1="${String(left)}" y1="${String(y(0))}" x2="${String(width - right)}" y2="${String(y(0))}" stroke="black"/>`,
    `<line x1="${String(left)}" y1="${String(top)}" x2="${String(left)}" y2="${String(y(0))}" stroke="black"/>`,
  ];
  const yStep = Math.max(1, Math.ceil(maxY / 5 / 5) * 5);
  for (let v = 0; v <= maxY; v += yStep) {
    parts.push(`<text x="${String(left - 6)}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${String(v)}</text>`);
    parts.push(`<line x1="${String(left)}" y1="${y(v).toFixed(1)}" x2="${String(width - right)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`);
  }
  const tStep = maxT > 60 ? 20 : 5;
  for (let t = 0; t <= maxT; t += tStep) {
    parts.push(`<text x="${x(t).toFixed(1)}" y="${String(height - bottom + 15)}" text-anchor="middle">${String(t)}s</text>`);
  }
  parts.push(`<text x="${String(left)}" y="${String(height - 5)}">seconds since traffic started; y: sessions per node (registry load; dotted: read from the nodes while etcd was down)</text>`);
  const faults = result.timeline.filter((e) => /^(scale-out|drain \(SIGTERM\)|SIGKILL|etcd stopped|memcached stopped|silent death)$/.test(e.event));
  faults.forEach((e, i) => {
    const fx = x(e.at).toFixed(1);
    parts.push(`<line x1="${fx}" y1="${String(top)}" x2="${fx}" y2="${String(y(0))}" stroke="#999" stroke-dasharray="4 3"/>`);
    const label = `${e.event.replace(' (SIGTERM)', '')}${e.detail && !e.event.includes('stopped') ? ` ${e.detail.split(' ')[0] ?? ''}` : ''}`;
    parts.push(`<text x="${(Number(fx) + 3).toFixed(1)}" y="${String(top + 10 + (i % 3) * 12)}" fill="#555">${escapeXml(label)}</text>`);
  });
  ids.forEach((id, i) => {
    const color = COLORS[i % COLORS.length] as string;
    const points = samples.filter((s) => s.connections[id] !== undefined).map((s) => ({ t: s.at / 1000, v: s.connections[id] as number, src: s.source }));
    if (points.length === 0) return;
    const d = pathD(points.map((p) => [x(p.t), y(p.v)]), 1);
    // Earlier nodes are drawn wider, so two nodes with the same load stay distinguishable.
    const strokeWidth = Math.max(1.5, 4 - i * 0.5);
    const dash = DASHES[i % DASHES.length] ?? '';
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="${String(strokeWidth)}" stroke-opacity="0.85"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
    for (const p of points.filter((q) => q.src === 'metrics')) {
      parts.push(`<circle cx="${x(p.t).toFixed(1)}" cy="${y(p.v).toFixed(1)}" r="1.8" fill="${color}"/>`);
    }
    parts.push(`<rect x="${String(width - right + 12)}" y="${String(top + i * 16)}" width="10" height="10" fill="${color}"/>`);
    parts.push(`<text x="${String(width - right + 26)}" y="${String(top + 9 + i * 16)}">${escapeXml(id)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** Reconnect times and errors, over the whole run and per fault phase. */
function reconnectsSection(result: ChaosResult): string[] {
  const t = result.totals;
  const out: string[] = [];
  out.push('## Reconnects and errors by phase', '');
  out.push(
    'From the SDK\'s state events: `reconnecting` → next `open` (includes the backoff, `/connect` and the SockJS handshake). Each phase runs from its fault to the next one; "send → answer" is the time from `send()` to its ack or error, for sends made in that phase.',
    '',
  );
  const r = result.reconnects;
  out.push(
    table(['', 'reconnects', 'p50', 'p99', 'max', 'send → answer p50 / p99 / max', 'errored sends'], [
      ['whole run', r.count, ms(r.p50), ms(r.p99), ms(r.max), answer(result.answerMs), String(t.errored)],
      ...result.reconnectsByFault.map((f) => [
        `${f.fault} (from t=${f.at.toFixed(1)} s)`,
        f.stats.count,
        ms(f.stats.p50),
        ms(f.stats.p99),
        ms(f.stats.max),
        answer(f.answerMs),
        Object.entries(f.errors).map(([code, n]) => `${code} ${String(n)}`).join(', ') || '0',
      ]),
    ]),
    '',
  );
  if (r.unfinished > 0) out.push(`Reconnects still unfinished at the end: ${String(r.unfinished)}.`, '');
  const connectErrors = Object.entries(result.connectErrors);
  if (connectErrors.length > 0) {
    out.push(`Failed connection attempts reported by the SDK (retried): ${connectErrors.map(([k, v]) => `${k} ${String(v)}`).join(', ')}. Terminal closes: ${String(result.terminalCloses.length)}.`, '');
  }
  return out;
}

/** Where the sessions went: the scale-out waves and the sessions per node over time. */
function loadSection(result: ChaosResult, ids: string[], svgName: string | undefined): string[] {
  const out: string[] = [];
  out.push('## Scale-out (acceptance 6)', '');
  out.push(
    'A node joins the loaded cluster; once the gateways see it, a wave of new pairs connects. Least-loaded allocation ' +
      'should send most of them to the new node until its load matches the others (evened out: within 10 % of their average).',
    '',
  );
  out.push(
    table(
      ['new node', 'visible at (s)', 'new sessions on it', 'share', 'load evened out after'],
      result.scaleOut.map((s) => [s.nodeId, s.at.toFixed(1), `${String(s.onNewNode)} / ${String(s.waveSize)}`, `${(s.share * 100).toFixed(0)} %`, s.evenedOutAfter === null ? 'not before the next fault' : `${s.evenedOutAfter.toFixed(1)} s`]),
    ),
    '',
  );
  out.push('## Sessions per node over time', '');
  if (svgName) out.push(`![sessions per node](${svgName})`, '');
  out.push(
    'Sampled every second from the registry (`load/<nodeId>`, what the gateways allocate by); while etcd was down, ' +
      'from each node\'s `msg_connections` gauge (source `metrics`). A draining node is marked `(d)`; `–` = not registered or no load record yet.',
    '',
  );
  const every = Math.max(1, Math.round(result.samples.length / 40));
  const rows = result.samples
    .filter((_, i) => i % every === 0 || i === result.samples.length - 1)
    .map((s) => [
      (s.at / 1000).toFixed(0),
      s.source,
      ...ids.map((id) => (s.connections[id] === undefined ? '–' : `${String(s.connections[id])}${s.draining.includes(id) ? ' (d)' : ''}`)),
      Object.values(s.connections).reduce((a, b) => a + b, 0),
    ]);
  out.push(table(['t (s)', 'source', ...ids, 'total'], rows), '');
  return out;
}

/** The Markdown report. `svgName` is the plot's file name next to it, if one was written. */
export function renderMarkdown(result: ChaosResult, svgName?: string): string {
  const c = result.config;
  const t = result.totals;
  const ids = nodeIds(result.samples);
  const out: string[] = [];
  out.push(`# Chaos run (${c.name})`, '');
  out.push(
    `Generated by \`make chaos\` (\`packages/harness/src/chaos.ts\`) on ${result.startedAt}; it took ${String(result.durationSeconds)} s. ` +
      'Real processes on one machine: etcd, memcached, gateways and nodes from `packages/cli/dist`, clients built on the ' +
      'client SDK (`@messaging-server/client`), which follows the close codes and reconnects with backoff and `avoid`; ' +
      'half of them with receipts on (contract v1.2), half off (v1.1).',
    '',
  );
  out.push(`**Silently lost: ${String(t.silentlyLost)}** of ${String(t.sent)} messages sent.`, '');
  const failures = verdict(result);
  if (failures.length === 0) out.push('**Verdict: passed** (nothing lost, duplicated, reordered or misdelivered; every fault applied; every client back).', '');
  else out.push(`**Verdict: FAILED** (${String(failures.length)}):`, '', ...failures.map((f) => `- ${f}`), '');
  out.push('## Configuration', '');
  out.push(
    table(['setting', 'value'], [
      ['pairs at start / joining after scale-out', `${String(c.pairs)} / ${String(c.scaleOutPairs)} (${String(result.clients)} clients)`],
      ['nodes at start / gateways', `${String(c.initialNodes)} / ${String(c.gateways)}`],
      ['traffic', `each open client sends to its partner every ${String(c.intervalMs)} ms (at most ${String(c.maxInflightPerStream)} unanswered per stream)`],
      ['traffic time', `${String(c.durationSeconds)} s, then every send is waited for`],
      ['SDK send deadline', `${String(c.sendTimeoutMs)} ms (a send unanswered by then counts as silently lost)`],
      ['process environment', Object.entries(c.env).map(([k, v]) => `\`${k}=${v}\``).join(', ')],
    ]),
    '',
  );
  out.push('## Fault timeline', '', 'Seconds since traffic started.', '');
  out.push(table(['t (s)', 'event', 'detail'], result.timeline.map((e) => [e.at.toFixed(1), e.event, e.detail])), '');
  out.push('## Messages', '');
  out.push(
    'Each message carries a per-pair sequence number. Fates: acked (and the recipient must have it), errored with a ' +
      'code (the sender was told; allowed), or silently lost (acked but never arrived, or never answered).',
    '',
  );
  out.push(
    table(['', 'count'], [
      ['sent', t.sent],
      ['acked', t.acked],
      ['errored (sender told)', t.errored],
      ['**silently lost**', `**${String(t.silentlyLost)}**`],
      ['— acked, never arrived', t.silentlyLostBy.ackedNeverArrived],
      ['— no answer within the deadline', t.silentlyLostBy.noAnswer],
      ['— still unanswered at the end', t.silentlyLostBy.unsettled],
      ['acked but out of order', t.ackedOutOfOrder],
      ['any arrival out of order (incl. errored sends)', t.outOfOrderAny],
      ['duplicates at the recipient (after the SDK dropped repeats)', t.duplicates],
      ['repeats the SDKs received and dropped (re-deliveries after a move)', result.repeatsDropped],
    ]),
    '',
  );
  out.push(...receiptsSection(result));
  out.push(...roomsSection(result));
  out.push(...vanishedSection(result));
  const codes = Object.entries(t.erroredByCode).sort(([, a], [, b]) => b - a);
  if (codes.length > 0) {
    out.push('Errors by code (`CONNECTION_LOST`: the sender\'s connection dropped before the answer, so the fate is unknown; "delivered anyway" counts those the recipient got):', '');
    out.push(table(['code', 'count', 'delivered anyway'], codes.map(([code, n]) => [code, n, t.erroredButDeliveredByCode[code] ?? 0])), '');
  }
  if (t.examples.length > 0) {
    out.push('First silent losses:', '');
    out.push(table(['stream', 'seq', 'why', 'sent at (s)'], t.examples.map((e) => [e.stream, e.seq, e.why, (e.sentAt / 1000).toFixed(1)])), '');
  }
  out.push(...reconnectsSection(result));
  out.push(...loadSection(result, ids, svgName));
  if (result.observations.length > 0) {
    out.push('## Observations', '', ...result.observations.map((o) => `- ${o}`), '');
  }
  if (result.anomalies.length > 0) {
    out.push('## Anomalies in the run itself', '', ...result.anomalies.map((a) => `- ${a}`), '');
  }
  return out.join('\n');
}

/** Writes the Markdown report, its JSON and the SVG plot into `dir`; returns the Markdown's path. */
export function writeReport(result: ChaosResult, dir: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'chaos-sessions.svg'), renderSvg(result));
  writeFileSync(join(dir, 'chaos-report.json'), JSON.stringify(result, null, 2) + '\n');
  const path = join(dir, 'chaos-report.md');
  writeFileSync(path, renderMarkdown(result, 'chaos-sessions.svg'));
  return path;
}

/** Contract v1.1: users who dropped off and never came back, and what their partners' sends got. */
function vanishedSection(result: ChaosResult): string[] {
  const v = result.vanished;
  if (v.at === undefined) return [];
  const e = v.after.expiredAtMs;
  return [
    '## Users who never came back (v1.1)',
    '',
    `${String(v.users)} users dropped off the network at ${(v.at / 1000).toFixed(1)} s (no close frame) and never called /connect ` +
      `again; resume window ${String(v.windowMs)} ms. These streams are left out of the totals above.`,
    '',
    table(['', 'count'], [
      ['sent before they vanished', v.before.sent],
      ['— acked and received', v.before.ackedAndReceived],
      ['sent after they vanished', v.after.sent],
      ...Object.entries(v.after.byCode).map(([code, n]): [string, number] => [`— answered ${code}`, n]),
      ['— EXPIRED before the window ended', v.after.expiredEarly],
      ['— EXPIRED more than 2 s after it ended', v.after.expiredLate],
    ]),
    '',
    `EXPIRED came ${String(e.p50)} ms (p50) and ${String(e.max)} ms (max) after the window's end.`,
    '',
  ];
}
