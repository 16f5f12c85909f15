/** Turns one bench run into docs/benchmarks.md (tables, ratios, targets), its JSON summary and an SVG plot. */
import { existsSync, readFileSync } from 'node:fs';
import type { LatencySummary } from './loadgen.js';
import { ROOT } from './systems.js';
import { idleRowProblems, judge, PACED_TOLERANCE, sweepRowProblems } from './verdict.js';

type SystemName = 'ours' | 'peerjs' | 'ws' | 'sockjs';

export interface RelayRow {
  system: SystemName;
  scenario: 'relay-1' | 'relay-2';
  size: 'candidate' | 'sdp';
  round: number;
  rate: number;
  latencyMs: LatencySummary;
  cpuUsPerMessage: number;
  serverCpuCores: number;
  /** write()/writev() and read() system calls of the server processes per delivered message. */
  writesPerMessage: number;
  readsPerMessage: number;
  loadgenCpuCores: number;
  errors: number;
  errorCodes: Record<string, number>;
  /** Messages sent over the run, and how many of them never arrived. */
  sent: number;
  lost: number;
  otherCpuUsPerMessage: Record<string, number>;
}

export interface SweepRow {
  system: SystemName;
  scenario: 'relay-1' | 'relay-2';
  round: number;
  fraction: number;
  targetRate: number;
  rate: number;
  latencyMs: LatencySummary;
  skipped: number;
  errors: number;
  errorCodes: Record<string, number>;
  sent: number;
  lost: number;
}

export interface ConnectRow {
  system: SystemName;
  round: number;
  rate: number;
  latencyMs: LatencySummary;
  completed: number;
  failed: number;
  firstError?: string;
}

export interface IdleRow {
  system: SystemName;
  round: number;
  /** Connections asked for, connections open when measured, and connects that failed on the way. */
  target: number;
  connections: number;
  failed: number;
  /** The processes summed into the RSS figures: the whole server side (for ours every node and the gateway). */
  serverProcesses: string[];
  baseKiB: number;
  rssKiB: number;
  perConnectionKiB: number;
  /** Growth per connection of processes reported beside the server side (memcached's session records). */
  others: Record<string, number>;
}

export interface BenchResults {
  startedAt: string;
  machine: { cpus: number; cpuModel: string; node: string; platform: string; memoryGiB: number };
  config: {
    rounds: number;
    pairs: number;
    window: number;
    seconds: number;
    sweepSeconds: number;
    fractions: number[];
    idle: number[];
    connects: number;
    connectConcurrency: number;
    systems: string[];
    quick: boolean;
  };
  relay: RelayRow[];
  sweep: SweepRow[];
  connect: ConnectRow[];
  idle: IdleRow[];
  /** System runs that threw; their rounds have no figures, which fails every target that needs them. */
  failures: { system: SystemName; round: number; error: string }[];
  durationSeconds: number;
}

function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

/** Median over rounds of a per-round ratio: each ratio compares systems measured minutes apart, not runs apart. */
function ratioByRound<T extends { round: number }>(a: T[], b: T[], value: (row: T) => number): number {
  const ratios: number[] = [];
  for (const row of a) {
    const other = b.find((x) => x.round === row.round);
    if (other) ratios.push(value(row) / value(other));
  }
  return median(ratios);
}

const NAMES: Record<SystemName, string> = { ours: 'ours', peerjs: 'PeerJS server 1.0.2', ws: 'bare `ws` relay', sockjs: 'bare `sockjs` relay' };

function f(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function x(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)} ×` : '–';
}

export function summarize(results: BenchResults): Record<string, unknown> {
  const relay = (system: SystemName, scenario: RelayRow['scenario'], size: RelayRow['size']): RelayRow[] =>
    results.relay.filter((r) => r.system === system && r.scenario === scenario && r.size === size);
  const sweepAt = (system: SystemName, scenario: SweepRow['scenario'], fraction: number): SweepRow[] =>
    results.sweep.filter((r) => r.system === system && r.scenario === scenario && r.fraction === fraction);
  const idleAt = (system: SystemName, n: number): IdleRow[] => results.idle.filter((r) => r.system === system && r.target === n);
  const ours1 = relay('ours', 'relay-1', 'candidate');
  const ours2 = relay('ours', 'relay-2', 'candidate');
  const peer1 = relay('peerjs', 'relay-1', 'candidate');
  const ws1 = relay('ws', 'relay-1', 'candidate');
  return {
    relayOneNodeRate: { ours: median(ours1.map((r) => r.rate)), peerjs: median(peer1.map((r) => r.rate)), ws: median(ws1.map((r) => r.rate)) },
    relayOneNodeVsPeerjs: ratioByRound(ours1, peer1, (r) => r.rate),
    relayOneNodeVsWs: ratioByRound(ours1, ws1, (r) => r.rate),
    relayCrossRate: median(ours2.map((r) => r.rate)),
    relayCrossVsOne: ratioByRound(ours2, ours1, (r) => r.rate),
    p99At50OneNodeMs: median(sweepAt('ours', 'relay-1', 0.5).map((r) => r.latencyMs.p99)),
    p99At50CrossMs: median(sweepAt('ours', 'relay-2', 0.5).map((r) => r.latencyMs.p99)),
    p99At50PeerjsMs: median(sweepAt('peerjs', 'relay-1', 0.5).map((r) => r.latencyMs.p99)),
    connectRate: {
      ours: median(results.connect.filter((r) => r.system === 'ours').map((r) => r.rate)),
      peerjs: median(results.connect.filter((r) => r.system === 'peerjs').map((r) => r.rate)),
    },
    idleKiBPerConnection: Object.fromEntries(
      results.config.idle.map((n) => [n, { ours: median(idleAt('ours', n).map((r) => r.perConnectionKiB)), peerjs: median(idleAt('peerjs', n).map((r) => r.perConnectionKiB)), ws: median(idleAt('ws', n).map((r) => r.perConnectionKiB)) }]),
    ),
    cpuUsPerMessage: { ours: median(ours1.map((r) => r.cpuUsPerMessage)), peerjs: median(peer1.map((r) => r.cpuUsPerMessage)), ws: median(ws1.map((r) => r.cpuUsPerMessage)), oursCross: median(ours2.map((r) => r.cpuUsPerMessage)) },
    cpuVsWs: ratioByRound(ours1, ws1, (r) => r.cpuUsPerMessage),
    cpuVsPeerjs: ratioByRound(ours1, peer1, (r) => r.cpuUsPerMessage),
    verdict: judge(results),
  };
}

// ---- SVG ---------------------------------------------------------------------------------------------------------

interface Series {
  label: string;
  color: string;
  points: { rate: number; p50: number; p99: number }[];
}

function seriesOf(results: BenchResults): Series[] {
  const defs: { system: SystemName; scenario: SweepRow['scenario']; label: string; color: string }[] = [
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
      points: results.config.fractions
        .map((fraction) => {
          const rows = results.sweep.filter((r) => r.system === d.system && r.scenario === d.scenario && r.fraction === fraction);
          return { rate: median(rows.map((r) => r.rate)), p50: median(rows.map((r) => r.latencyMs.p50)), p99: median(rows.map((r) => r.latencyMs.p99)) };
        })
        .filter((p) => Number.isFinite(p.rate) && Number.isFinite(p.p99)),
    }))
    .filter((s) => s.points.length > 0);
}

export function renderSvg(results: BenchResults): string {
  const series = seriesOf(results);
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
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${String(W)}" height="${String(H)}" viewBox="0 0 ${String(W)} ${String(H)}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="${String(m.left)}" y="22" font-size="14" font-weight="bold">Relay latency over load (200 B messages, median of ${String(results.config.rounds)} rounds)</text>`);
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
    out.push(`<text x="${xx}" y="${String(m.top + ph + 16)}" text-anchor="middle">${f(v)}</text>`);
  }
  out.push(`<rect x="${String(m.left)}" y="${String(m.top)}" width="${String(pw)}" height="${String(ph)}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${String(m.left + pw / 2)}" y="${String(H - 12)}" text-anchor="middle">delivered messages/s (paced at 25, 50, 75, 90 % of each system's maximum)</text>`);
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

// ---- Markdown ----------------------------------------------------------------------------------------------------

/** How a target's figure reads: ratios as "0.92 ×", latencies in ms, the connect rate per second. */
function targetFigure(target: string, value: number): string {
  if (target.startsWith('p99')) return `${f(value, 2)} ms`;
  if (target.startsWith('connect')) return `${f(value)}/s`;
  return x(value);
}

function sum<T>(rows: T[], pick: (row: T) => number): string {
  return f(rows.reduce((n, r) => n + pick(r), 0));
}

function medianRow<T extends { round: number }>(rows: T[], pick: (row: T) => number): number {
  return median(rows.map(pick));
}

export function renderReport(results: BenchResults): { markdown: string; svg: string; summary: Record<string, unknown> } {
  const summary = summarize(results);
  const c = results.config;
  const md: string[] = [];
  const systems = (['ours', 'peerjs', 'ws', 'sockjs'] as SystemName[]).filter((name) => c.systems.includes(name));
  md.push('# Benchmarks');
  md.push('');
  md.push(
    `Generated by \`make bench\` (scripts/bench) on ${results.startedAt.slice(0, 16).replace('T', ' ')} UTC in ${f(results.durationSeconds)} s. All systems ran in this one invocation, on 127.0.0.1, under the same load generator, interleaved over ${String(c.rounds)} round(s) (the order rotates each round). Figures are medians over rounds; ratios are medians of per-round ratios.${c.quick ? ' **QUICK smoke run: reduced sizes, not for comparison.**' : ''}`,
  );
  md.push('');
  md.push(`**Machine:** ${String(results.machine.cpus)} × ${results.machine.cpuModel}, ${String(results.machine.memoryGiB)} GiB, ${results.machine.platform}, Node ${results.machine.node}.`);
  md.push('');
  md.push('**Systems.**');
  md.push('- **ours**: etcd + memcached + one gateway + two nodes, the built CLI (`messaging-server gateway|node`) started by testkit\'s `startCluster`. One-node scenarios put every client on node-1 (`/connect` with `avoid: ["node-2"]`); the cross-node scenario puts each pair\'s sides on different nodes. Schema validation, sessions and acks are on; every message carries an `id` and is acked. The per-connection rate limit is lifted for the bench (`MSG_RATE_MESSAGES_PER_SECOND=1000000`, `MSG_RATE_BURST=2000000`); log level is the default (`info`).');
  md.push('- **PeerJS server** 1.0.2 via its own CLI (`peerjs --port P --host 127.0.0.1 --concurrent_limit 100000 --alive_timeout 3600000`; the defaults refuse connection 5,001 and drop clients without heartbeats after 60 s). Messages are `{"type":"CANDIDATE","dst","payload"}`.');
  md.push('- **bare ws relay** (`scripts/bench/bare-ws-relay.ts`, `ws` 8): parses each frame once for `dst` and forwards it unchanged. No sessions, validation, acks or queueing: the floor.');
  if (c.systems.includes('sockjs')) md.push('- **bare sockjs relay** (`scripts/bench/bare-sockjs-relay.ts`, `sockjs` 0.3.24): the same forward-only relay on the library our node uses, over its websocket transport.');
  md.push('');
  md.push(
    `**Load.** A separate load-generator process (\`scripts/bench/loadgen.ts\`) speaks the raw SockJS websocket transport to ours (\`<listeningAddress>/<server>/<session>/websocket\`) and plain WebSocket to the others, without compression. ${String(c.pairs)} pairs; closed-loop runs keep ${String(c.window)} messages in flight per pair (half each way) for ${String(c.seconds)} s after 1 s of warm-up; the same payload (≈200 B ICE candidate or ≈2 KB SDP, with a send timestamp) for every system. Latency is end to end (send → receipt, one clock). Paced runs send at a fixed rate (a 1 ms timer) for ${String(c.sweepSeconds)} s at ${c.fractions.map((x) => `${String(x * 100)} %`).join(', ')} of that round's closed-loop maximum. CPU is user+system time of the server processes (from /proc) over the measurement window, divided by delivered messages. RSS is the VmRSS sum of the whole server side (ours: both nodes and the gateway; the others: their one process), before and after opening the idle connections on fresh processes; memcached is reported beside it.`,
  );
  md.push('');

  // Targets
  const verdict = judge(results);
  md.push('## Against the targets');
  md.push('');
  md.push(
    'Each figure is the median over rounds of a per-round value (for ratios, of per-round ratios), and every round must supply one: a round whose measurement failed or does not count (errors, lost or skipped messages, a paced step that did not deliver what it offered, a missing CPU sample, connections that did not open) leaves the figure without valid data, which fails the target.',
  );
  md.push('');
  md.push('| target | figure | result |');
  md.push('| --- | --- | --- |');
  for (const t of verdict.targets) {
    const result = t.missing.length > 0 ? `**no valid data** (${t.missing.join('; ')})` : t.pass ? 'met' : '**missed**';
    md.push(`| ${t.target} | ${targetFigure(t.target, t.value)} | ${result} |`);
  }
  md.push('');
  if (verdict.failures.length > 0) {
    md.push(`**Verdict: FAILED** (${String(verdict.failures.length)}):`);
    md.push('');
    for (const failure of verdict.failures) md.push(`- ${failure}`);
  } else {
    md.push('**Verdict: every target met, on valid data from every round.**');
  }
  md.push('');

  // Relay
  md.push('## 1, 2, 5, 6. Relay throughput and CPU per message (closed loop)');
  md.push('');
  md.push('| system | scenario | size | msgs/s | vs PeerJS | vs bare ws | CPU µs/msg | CPU vs bare ws | writes/msg | reads/msg | server cores | load-gen cores | p50 / p99 ms (saturated) |');
  md.push('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const scenario of ['relay-1', 'relay-2'] as const) {
    for (const size of ['candidate', 'sdp'] as const) {
      for (const system of systems) {
        const rows = results.relay.filter((r) => r.system === system && r.scenario === scenario && r.size === size);
        if (rows.length === 0) continue;
        const peer = results.relay.filter((r) => r.system === 'peerjs' && r.scenario === 'relay-1' && r.size === size);
        const ws = results.relay.filter((r) => r.system === 'ws' && r.scenario === 'relay-1' && r.size === size);
        md.push(
          `| ${NAMES[system]} | ${scenario === 'relay-1' ? 'one node' : 'across 2 nodes'} | ${size === 'candidate' ? '200 B' : '2 KB'} | ${f(medianRow(rows, (r) => r.rate))} | ${x(ratioByRound(rows, peer, (r) => r.rate))} | ${x(ratioByRound(rows, ws, (r) => r.rate))} | ${f(medianRow(rows, (r) => r.cpuUsPerMessage), 1)} | ${x(ratioByRound(rows, ws, (r) => r.cpuUsPerMessage))} | ${f(medianRow(rows, (r) => r.writesPerMessage), 2)} | ${f(medianRow(rows, (r) => r.readsPerMessage), 2)} | ${f(medianRow(rows, (r) => r.serverCpuCores), 2)} | ${f(medianRow(rows, (r) => r.loadgenCpuCores), 2)} | ${f(medianRow(rows, (r) => r.latencyMs.p50), 1)} / ${f(medianRow(rows, (r) => r.latencyMs.p99), 1)} |`,
        );
      }
    }
  }
  const oursOther = results.relay.filter((r) => r.system === 'ours' && r.size === 'candidate');
  if (oursOther.length > 0) {
    const names = [...new Set(oursOther.flatMap((r) => Object.keys(r.otherCpuUsPerMessage)))];
    md.push('');
    md.push(
      `Ours, CPU µs per message in the other processes (not in the figures above): ${(['relay-1', 'relay-2'] as const)
        .map((sc) => `${sc === 'relay-1' ? 'one node' : 'across nodes'}: ${names.map((n) => `${n} ${f(median(oursOther.filter((r) => r.scenario === sc).map((r) => r.otherCpuUsPerMessage[n] ?? NaN)), 2)}`).join(', ')}`)
        .join('; ')}. Across nodes, "CPU µs/msg" sums both nodes.`,
    );
  }
  md.push('');
  md.push('## Latency over load (paced)');
  md.push('');
  md.push('![latency over load](benchmarks.svg)');
  md.push('');
  md.push(`A paced step counts only if it delivered its offered rate (within ${String(PACED_TOLERANCE * 100)} %) with no error, no skipped send and no message lost; "counts" says in how many rounds it did.`);
  md.push('');
  md.push('| system | scenario | load | offered msgs/s | delivered msgs/s | p50 ms | p99 ms | lost / errors / skipped (all rounds) | counts |');
  md.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const system of systems) {
    for (const scenario of ['relay-1', 'relay-2'] as const) {
      for (const fraction of c.fractions) {
        const rows = results.sweep.filter((r) => r.system === system && r.scenario === scenario && r.fraction === fraction);
        if (rows.length === 0) continue;
        md.push(
          `| ${NAMES[system]} | ${scenario === 'relay-1' ? 'one node' : 'across 2 nodes'} | ${String(fraction * 100)} % | ${f(medianRow(rows, (r) => r.targetRate))} | ${f(medianRow(rows, (r) => r.rate))} | ${f(medianRow(rows, (r) => r.latencyMs.p50), 2)} | ${f(medianRow(rows, (r) => r.latencyMs.p99), 2)} | ${sum(rows, (r) => r.lost)} / ${sum(rows, (r) => r.errors)} / ${sum(rows, (r) => r.skipped)} | ${String(rows.filter((r) => sweepRowProblems(r).length === 0).length)} of ${String(c.rounds)} |`,
        );
      }
    }
  }
  md.push('');
  md.push('## 3. Connect');
  md.push('');
  md.push(
    `${String(c.connects)} connections, ${String(c.connectConcurrency)} at a time. Ours: \`POST /connect\` (undici pool to the gateway) → SockJS websocket open → \`welcome\`. PeerJS server: WebSocket open → \`OPEN\` (a PeerJS client that lets the server pick its id first calls \`GET /peerjs/id\`; not counted here).`,
  );
  md.push('');
  md.push('| system | completions/s | vs PeerJS | p50 ms | p99 ms | failed |');
  md.push('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const system of systems) {
    const rows = results.connect.filter((r) => r.system === system);
    if (rows.length === 0) continue;
    const peer = results.connect.filter((r) => r.system === 'peerjs');
    md.push(`| ${NAMES[system]} | ${f(medianRow(rows, (r) => r.rate))} | ${x(ratioByRound(rows, peer, (r) => r.rate))} | ${f(medianRow(rows, (r) => r.latencyMs.p50), 1)} | ${f(medianRow(rows, (r) => r.latencyMs.p99), 1)} | ${f(rows.reduce((n, r) => n + r.failed, 0))} |`);
  }
  md.push('');
  md.push('## 4. Idle connections');
  md.push('');
  md.push('RSS growth of the whole server side (the processes named in the row), divided by the number of connections (opened 100 at a time, measured 2 s after the last one opened), at every connection count. For ours also the memcached growth per connection (its session records), beside the server side and not included in it.');
  md.push('');
  md.push('| system | connections | server processes | KiB per connection | vs PeerJS | RSS before → after (MiB) | memcached KiB/conn | opened in every round |');
  md.push('| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |');
  for (const system of systems) {
    for (const n of c.idle) {
      const rows = results.idle.filter((r) => r.system === system && r.target === n);
      if (rows.length === 0) continue;
      const peer = results.idle.filter((r) => r.system === 'peerjs' && r.target === n);
      const mem = median(rows.map((r) => r.others['memcached'] ?? NaN));
      md.push(
        `| ${NAMES[system]} | ${f(n)} | ${rows[0]?.serverProcesses.join(' + ') ?? '?'} | ${f(medianRow(rows, (r) => r.perConnectionKiB), 1)} | ${x(ratioByRound(rows, peer, (r) => r.perConnectionKiB))} | ${f(medianRow(rows, (r) => r.baseKiB) / 1024)} → ${f(medianRow(rows, (r) => r.rssKiB) / 1024)} | ${Number.isFinite(mem) ? f(mem, 2) : '–'} | ${rows.length === c.rounds && rows.every((r) => idleRowProblems(r).length === 0) ? 'yes' : '**no**'} |`,
      );
    }
  }
  md.push('');
  md.push('## Per round');
  md.push('');
  md.push('Closed-loop 200 B relay, msgs/s per round (the spread shows the machine\'s noise):');
  md.push('');
  md.push(`| system | ${Array.from({ length: c.rounds }, (_, i) => `round ${String(i + 1)}`).join(' | ')} |`);
  md.push(`| --- | ${Array.from({ length: c.rounds }, () => '---:').join(' | ')} |`);
  for (const system of systems) {
    for (const scenario of ['relay-1', 'relay-2'] as const) {
      const rows = results.relay.filter((r) => r.system === system && r.scenario === scenario && r.size === 'candidate');
      if (rows.length === 0) continue;
      md.push(`| ${NAMES[system]}${scenario === 'relay-2' ? ' (across nodes)' : ''} | ${Array.from({ length: c.rounds }, (_, i) => f(rows.find((r) => r.round === i + 1)?.rate ?? NaN)).join(' | ')} |`);
    }
  }
  md.push('');
  const notes = `${ROOT}scripts/bench/analysis.md`;
  if (existsSync(notes)) {
    md.push(readFileSync(notes, 'utf8').trim());
    md.push('');
  }
  return { markdown: `${md.join('\n')}\n`, svg: renderSvg(results), summary };
}
