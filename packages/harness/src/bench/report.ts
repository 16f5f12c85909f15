/** Turns one bench run into docs/benchmarks.md (targets by shape, ours against the baseline, tables) and its JSON summary. */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { receiptsSection, receiptsSummary } from './report-receipts.js';
import { renderSvg } from './report-svg.js';
import { shapeKey, shapeLabel, type BenchResults, type IdleRow, type RelayRow, type Scenario, type SystemName } from './results.js';
import { formatNumber as f, formatRatio as x } from '../markdown.js';
import { median, ratioByRound } from '../stats.js';
import { BUSY_ELSEWHERE_LIMIT, formatFigure, idleRowProblems, judge, PACED_TOLERANCE, sweepRowProblems, type BenchVerdict, type TargetVerdict } from './verdict.js';

const NAMES: Record<SystemName, string> = { ours: 'ours', base: 'base', peerjs: 'PeerJS server 1.0.2', ws: 'bare `ws` relay', sockjs: 'bare `sockjs` relay' };
const WHERE: Record<Scenario, string> = { 'relay-1': 'one node', 'relay-2': 'across 2 nodes' };
const SIZE: Record<RelayRow['size'], string> = { candidate: '200 B', sdp: '2 KB' };
const ORDER: SystemName[] = ['ours', 'base', 'peerjs', 'ws', 'sockjs'];

function nameOf(results: BenchResults, system: SystemName): string {
  const baseline = results.config.baseline;
  return system === 'base' && baseline ? `base (${baseline.ref}, ${baseline.commit.slice(0, 9)})` : NAMES[system];
}

function rowsOf(results: BenchResults, system: SystemName, scenario: Scenario, shape: string, size: RelayRow['size'] = 'candidate'): RelayRow[] {
  return results.relay.filter((r) => r.system === system && r.scenario === scenario && r.shape === shape && r.size === size);
}

const rateOf = (r: { rate: number }): number => r.rate;
const cpuOf = (r: RelayRow): number => r.cpuUsPerMessage;

export function summarize(results: BenchResults): Record<string, unknown> {
  const p99At50 = (system: SystemName, scenario: Scenario, shape: string): number =>
    median(results.sweep.filter((r) => r.system === system && r.scenario === scenario && r.shape === shape && r.fraction === 0.5).map((r) => r.latencyMs.p99));
  const byShape = results.config.shapes.map((s) => {
    const k = shapeKey(s);
    const one = (system: SystemName, size: RelayRow['size'] = 'candidate'): RelayRow[] => rowsOf(results, system, 'relay-1', k, size);
    const cross = (system: SystemName): RelayRow[] => rowsOf(results, system, 'relay-2', k);
    return [
      k,
      {
        rate: { ours: median(one('ours').map(rateOf)), oursCross: median(cross('ours').map(rateOf)), base: median(one('base').map(rateOf)), baseCross: median(cross('base').map(rateOf)), peerjs: median(one('peerjs').map(rateOf)), ws: median(one('ws').map(rateOf)) },
        cpuUsPerMessage: { ours: median(one('ours').map(cpuOf)), oursCross: median(cross('ours').map(cpuOf)), base: median(one('base').map(cpuOf)), baseCross: median(cross('base').map(cpuOf)), peerjs: median(one('peerjs').map(cpuOf)), ws: median(one('ws').map(cpuOf)) },
        oneNodeVsPeerjs: ratioByRound(one('ours'), one('peerjs'), rateOf),
        oneNodeVsPeerjsSdp: ratioByRound(one('ours', 'sdp'), one('peerjs', 'sdp'), rateOf),
        crossVsOne: ratioByRound(cross('ours'), one('ours'), rateOf),
        crossCpuVsOne: ratioByRound(cross('ours'), one('ours'), cpuOf),
        cpuVsWs: ratioByRound(one('ours'), one('ws'), cpuOf),
        vsBase: { rate: ratioByRound(one('ours'), one('base'), rateOf), cpu: ratioByRound(one('ours'), one('base'), cpuOf), crossRate: ratioByRound(cross('ours'), cross('base'), rateOf), crossCpu: ratioByRound(cross('ours'), cross('base'), cpuOf) },
        p99At50Ms: { ours: p99At50('ours', 'relay-1', k), oursCross: p99At50('ours', 'relay-2', k), peerjs: p99At50('peerjs', 'relay-1', k) },
      },
    ];
  });
  const connect = (system: SystemName): number[] => results.connect.filter((r) => r.system === system).map(rateOf);
  const idleAt = (system: SystemName, n: number): number => median(results.idle.filter((r) => r.system === system && r.target === n).map((r) => r.perConnectionKiB));
  return {
    shapes: Object.fromEntries(byShape),
    connectRate: { ours: median(connect('ours')), peerjs: median(connect('peerjs')) },
    idleKiBPerConnection: Object.fromEntries(results.config.idle.map((n) => [n, { ours: idleAt('ours', n), peerjs: idleAt('peerjs', n), ws: idleAt('ws', n) }])),
    receipts: receiptsSummary(results),
    verdict: judge(results),
  };
}

function verdictCell(t: TargetVerdict | undefined): string {
  if (!t) return '';
  if (t.missing.length > 0) return '**no valid data**';
  return `${formatFigure(t)} ${t.pass ? 'met' : '**missed**'}`;
}

function targetsSection(results: BenchResults, verdict: BenchVerdict): string[] {
  const shapes = results.config.shapes;
  const md: string[] = ['## Against the targets', ''];
  md.push(
    'Each figure is the median over rounds of a per-round ratio, and every round must supply one: a round whose measurement failed or does not count (errors, lost or skipped messages, a paced step that did not deliver what it offered, a missing CPU sample, connections that did not open) leaves the figure without valid data, which fails the target. The reasons are listed under the verdict.',
  );
  md.push('');
  md.push(`| target | ${shapes.map(shapeLabel).join(' | ')} |`);
  md.push(`| --- | ${shapes.map(() => '---').join(' | ')} |`);
  const families = [...new Set(verdict.targets.filter((t) => t.shape !== undefined).map((t) => t.family))];
  for (const family of families) {
    md.push(`| ${family} | ${shapes.map((s) => verdictCell(verdict.targets.find((t) => t.family === family && t.shape === shapeKey(s)))).join(' | ')} |`);
  }
  md.push('');
  md.push('| target (whole run) | figure |');
  md.push('| --- | --- |');
  for (const t of verdict.targets.filter((v) => v.shape === undefined)) md.push(`| ${t.target} | ${verdictCell(t)} |`);
  md.push('');
  if (verdict.failures.length > 0) {
    md.push(`**Verdict: FAILED** (${String(verdict.failures.length)}):`);
    md.push('');
    for (const failure of verdict.failures) md.push(`- ${failure}`);
  } else {
    md.push('**Verdict: every target met, on valid data from every round.**');
  }
  md.push('');
  return md;
}

function baselineSection(results: BenchResults): string[] {
  const baseline = results.config.baseline;
  if (!baseline) return [];
  const md: string[] = ['## Ours against the baseline', ''];
  md.push(
    `\`base\` is this cluster built from \`${baseline.ref}\` (${baseline.commit}) in a throwaway git worktree under .tmp/bench/, started by the same testkit with the same settings. In each round both clusters start fresh together for the relays, each with its own load generator and pairs, and their closed-loop runs alternate run by run (ours first in odd rounds, base first in even ones), so each ratio compares runs seconds apart. Base runs the closed-loop relays only (no idle, connect or paced runs). Ratios are medians of per-round ratios; CPU counts the relaying node(s), both nodes across nodes.`,
  );
  md.push('');
  md.push('| scenario | shape | size | ours msgs/s | base msgs/s | ours ÷ base | ours CPU µs/msg | base CPU µs/msg | ours ÷ base |');
  md.push('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const scenario of ['relay-1', 'relay-2'] as const) {
    for (const s of results.config.shapes) {
      for (const size of scenario === 'relay-1' ? (['candidate', 'sdp'] as const) : (['candidate'] as const)) {
        const ours = rowsOf(results, 'ours', scenario, shapeKey(s), size);
        const base = rowsOf(results, 'base', scenario, shapeKey(s), size);
        md.push(
          `| ${WHERE[scenario]} | ${shapeLabel(s)} | ${SIZE[size]} | ${f(median(ours.map(rateOf)))} | ${f(median(base.map(rateOf)))} | ${x(ratioByRound(ours, base, rateOf))} | ${f(median(ours.map(cpuOf)), 1)} | ${f(median(base.map(cpuOf)), 1)} | ${x(ratioByRound(ours, base, cpuOf))} |`,
        );
      }
    }
  }
  md.push('');
  return md;
}

function relaySection(results: BenchResults, systems: SystemName[]): string[] {
  const md: string[] = ['## Relay throughput and CPU per message (closed loop)', ''];
  md.push(`Ratios compare with PeerJS server and the bare relay on one node, in the same shape and size. "Others' work" is what the machine spent outside the bench's processes and the kernel's threads during the window (other people's jobs, hypervisor steal); a run above ${String(BUSY_ELSEWHERE_LIMIT)} cores is measured again, up to 3 times, and does not count if it stays above.`);
  md.push('');
  md.push("| system | scenario | shape | size | msgs/s | vs PeerJS | vs bare ws | CPU µs/msg | CPU vs bare ws | writes/msg | reads/msg | server cores | load-gen cores | others' work (cores) | p50 / p99 ms (saturated) |");
  md.push('| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const scenario of ['relay-1', 'relay-2'] as const) {
    for (const s of results.config.shapes) {
      const k = shapeKey(s);
      for (const size of ['candidate', 'sdp'] as const) {
        const peer = rowsOf(results, 'peerjs', 'relay-1', k, size);
        const ws = rowsOf(results, 'ws', 'relay-1', k, size);
        for (const system of systems) {
          const rows = rowsOf(results, system, scenario, k, size);
          if (rows.length === 0) continue;
          const m = (pick: (r: RelayRow) => number, digits = 0): string => f(median(rows.map(pick)), digits);
          md.push(
            `| ${nameOf(results, system)} | ${WHERE[scenario]} | ${shapeLabel(s)} | ${SIZE[size]} | ${m(rateOf)} | ${x(ratioByRound(rows, peer, rateOf))} | ${x(ratioByRound(rows, ws, rateOf))} | ${m(cpuOf, 1)} | ${x(ratioByRound(rows, ws, cpuOf))} | ${m((r) => r.writesPerMessage, 2)} | ${m((r) => r.readsPerMessage, 2)} | ${m((r) => r.serverCpuCores, 2)} | ${m((r) => r.loadgenCpuCores, 2)} | ${m((r) => r.busyElsewhereCores ?? NaN, 2)} | ${m((r) => r.latencyMs.p50, 1)} / ${m((r) => r.latencyMs.p99, 1)} |`,
          );
        }
      }
    }
  }
  for (const system of ['ours', 'base'] as const) {
    const rows = results.relay.filter((r) => r.system === system && r.size === 'candidate');
    if (rows.length === 0) continue;
    const names = [...new Set(rows.flatMap((r) => Object.keys(r.otherCpuUsPerMessage)))];
    const parts = (['relay-1', 'relay-2'] as const).flatMap((sc) =>
      results.config.shapes.map((s) => {
        const these = rows.filter((r) => r.scenario === sc && r.shape === shapeKey(s));
        return `${WHERE[sc]}, ${shapeLabel(s)}: ${names.map((n) => `${n} ${f(median(these.map((r) => r.otherCpuUsPerMessage[n] ?? NaN)), 2)}`).join(', ')}`;
      }),
    );
    md.push('');
    md.push(`${nameOf(results, system)}, CPU µs per message in the other processes (not in the figures above): ${parts.join('; ')}. Across nodes, "CPU µs/msg" sums both nodes.`);
  }
  md.push('');
  return md;
}

function latencySection(results: BenchResults, systems: SystemName[]): string[] {
  const md: string[] = ['## Latency over load (paced)', '', '![latency over load](benchmarks.svg)', ''];
  md.push(
    `The plot shows the first shape's full sweep; the other shapes run only the 50 % step the verdicts judge. A paced step counts only if it delivered its offered rate (within ${String(PACED_TOLERANCE * 100)} %) with no error, no skipped send and no message lost, while the machine did little else; "counts" says in how many rounds it did.`,
  );
  md.push('');
  md.push('| system | scenario | shape | load | offered msgs/s | delivered msgs/s | p50 ms | p99 ms | lost / errors / skipped (all rounds) | counts |');
  md.push('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const total = <T>(rows: T[], pick: (row: T) => number): string => f(rows.reduce((n, r) => n + pick(r), 0));
  for (const system of systems) {
    for (const scenario of ['relay-1', 'relay-2'] as const) {
      for (const s of results.config.shapes) {
        for (const fraction of s.fractions) {
          const rows = results.sweep.filter((r) => r.system === system && r.scenario === scenario && r.shape === shapeKey(s) && r.fraction === fraction);
          if (rows.length === 0) continue;
          md.push(
            `| ${nameOf(results, system)} | ${WHERE[scenario]} | ${shapeLabel(s)} | ${String(fraction * 100)} % | ${f(median(rows.map((r) => r.targetRate)))} | ${f(median(rows.map(rateOf)))} | ${f(median(rows.map((r) => r.latencyMs.p50)), 2)} | ${f(median(rows.map((r) => r.latencyMs.p99)), 2)} | ${total(rows, (r) => r.lost)} / ${total(rows, (r) => r.errors)} / ${total(rows, (r) => r.skipped)} | ${String(rows.filter((r) => sweepRowProblems(r).length === 0).length)} of ${String(results.config.rounds)} |`,
          );
        }
      }
    }
  }
  md.push('');
  return md;
}

function connectAndIdleSections(results: BenchResults, systems: SystemName[]): string[] {
  const c = results.config;
  const md: string[] = ['## Connect', ''];
  md.push(
    `${String(c.connects)} connections, ${String(c.connectConcurrency)} at a time. Ours: \`POST /connect\` (undici pool to the gateway) → SockJS websocket open → \`welcome\`. PeerJS server: WebSocket open → \`OPEN\` (a PeerJS client that lets the server pick its id first calls \`GET /peerjs/id\`; not counted here).`,
  );
  md.push('');
  md.push('| system | completions/s | vs PeerJS | p50 ms | p99 ms | failed |');
  md.push('| --- | ---: | ---: | ---: | ---: | ---: |');
  const peer = results.connect.filter((r) => r.system === 'peerjs');
  for (const system of systems) {
    const rows = results.connect.filter((r) => r.system === system);
    if (rows.length === 0) continue;
    md.push(
      `| ${nameOf(results, system)} | ${f(median(rows.map(rateOf)))} | ${x(ratioByRound(rows, peer, rateOf))} | ${f(median(rows.map((r) => r.latencyMs.p50)), 1)} | ${f(median(rows.map((r) => r.latencyMs.p99)), 1)} | ${f(rows.reduce((n, r) => n + r.failed, 0))} |`,
    );
  }
  md.push('');
  md.push('## Reconnect storm');
  md.push('');
  md.push(
    `${String(c.stormClients)} idle clients on node-1, which is then SIGKILLed; each client reconnects when its connection drops (after a random wait of up to 250 ms, the SDK's first full-jitter delay), asking \`/connect\` to avoid node-1. The figure is from the kill to the last welcome on node-2; per client, from its close to its welcome.`,
  );
  md.push('');
  md.push('| system | round | clients back | last welcome after the kill (ms) | per client p50 ms | p99 ms | failed |');
  md.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of results.storm) {
    md.push(`| ${nameOf(results, r.system)} | ${String(r.round)} | ${String(r.reconnected)} / ${String(r.clients)} | ${String(r.lastWelcomeMs)} | ${f(r.latencyMs.p50)} | ${f(r.latencyMs.p99)} | ${String(r.failed)} |`);
  }
  md.push('');
  md.push('## Idle connections');
  md.push('');
  // With more than one server process, each one's own growth (median over rounds) says where the memory went.
  const serverSide = (rows: IdleRow[]): string => {
    const names = rows[0]?.serverProcesses ?? [];
    if (names.length < 2 || rows.every((r) => r.byProcess === undefined)) return names.join(' + ') || '?';
    return names.map((name) => `${name} ${f(median(rows.map((r) => r.byProcess?.[name] ?? NaN)), 1)}`).join(' + ');
  };
  md.push('RSS growth of the whole server side (the processes named in the row, each with its own KiB per connection where there are several), divided by the number of connections (opened 100 at a time, measured 2 s after the last one opened), at every connection count. For ours also the memcached growth per connection (its session records), beside the server side and not included in it.');
  md.push('');
  md.push('| system | connections | server processes | KiB per connection | vs PeerJS | RSS before → after (MiB) | memcached KiB/conn | opened in every round |');
  md.push('| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |');
  for (const system of systems) {
    for (const n of c.idle) {
      const rows = results.idle.filter((r) => r.system === system && r.target === n);
      if (rows.length === 0) continue;
      const peerIdle = results.idle.filter((r) => r.system === 'peerjs' && r.target === n);
      const mem = median(rows.map((r) => r.others['memcached'] ?? NaN));
      md.push(
        `| ${nameOf(results, system)} | ${f(n)} | ${serverSide(rows)} | ${f(median(rows.map((r) => r.perConnectionKiB)), 1)} | ${x(ratioByRound(rows, peerIdle, (r) => r.perConnectionKiB))} | ${f(median(rows.map((r) => r.baseKiB)) / 1024)} → ${f(median(rows.map((r) => r.rssKiB)) / 1024)} | ${Number.isFinite(mem) ? f(mem, 2) : '–'} | ${rows.length === c.rounds && rows.every((r) => idleRowProblems(r).length === 0) ? 'yes' : '**no**'} |`,
      );
    }
  }
  md.push('');
  return md;
}

function perRoundSection(results: BenchResults, systems: SystemName[]): string[] {
  const rounds = Array.from({ length: results.config.rounds }, (_, i) => i + 1);
  const md: string[] = ['## Per round', '', "Closed-loop 200 B relay, msgs/s and CPU µs/msg per round (the spread shows the machine's noise):", ''];
  md.push(`| system | scenario | shape | ${rounds.map((r) => `round ${String(r)}`).join(' | ')} |`);
  md.push(`| --- | --- | --- | ${rounds.map(() => '---:').join(' | ')} |`);
  for (const system of systems) {
    for (const scenario of ['relay-1', 'relay-2'] as const) {
      for (const s of results.config.shapes) {
        const rows = rowsOf(results, system, scenario, shapeKey(s));
        if (rows.length === 0) continue;
        const cell = (round: number): string => {
          const row = rows.find((r) => r.round === round);
          return row ? `${f(row.rate)} (${f(row.cpuUsPerMessage, 1)} µs)` : '–';
        };
        md.push(`| ${nameOf(results, system)} | ${WHERE[scenario]} | ${shapeLabel(s)} | ${rounds.map(cell).join(' | ')} |`);
      }
    }
  }
  md.push('');
  return md;
}

function introSection(results: BenchResults): string[] {
  const c = results.config;
  const md: string[] = ['# Benchmarks', ''];
  md.push(
    `Generated by \`make bench\` (packages/harness/src/bench) on ${results.startedAt.slice(0, 16).replace('T', ' ')} UTC in ${f(results.durationSeconds)} s. All systems ran in this one invocation, on 127.0.0.1, under the same load generator, interleaved over ${String(c.rounds)} round(s) (the order rotates each round). Figures are medians over rounds; ratios are medians of per-round ratios.${c.quick ? ' **QUICK smoke run: reduced sizes, not for comparison.**' : ''}`,
  );
  md.push('');
  md.push(`**Machine:** ${String(results.machine.cpus)} × ${results.machine.cpuModel}, ${String(results.machine.memoryGiB)} GiB, ${results.machine.platform}, Node ${results.machine.node}.`);
  md.push('');
  md.push('**Systems.**');
  md.push('- **ours**: etcd + memcached + one gateway + two nodes, the built CLI (`messaging-server gateway|node`) started by testkit\'s `startCluster`. One-node scenarios put every client on node-1 (`/connect` with `avoid: ["node-2"]`); the cross-node scenario puts each pair\'s sides on different nodes. Schema validation, sessions and acks are on; every message carries an `id` and is acked. The per-connection rate limit is lifted for the bench (`MSG_RATE_MESSAGES_PER_SECOND=1000000`, `MSG_RATE_BURST=2000000`); the nodes share a cluster secret (`MSG_CLUSTER_SECRET`), as production mode requires; log level is the default (`info`).');
  if (c.baseline) md.push(`- **${nameOf(results, 'base')}**: the same cluster, set up the same way, built from \`${c.baseline.ref}\` (BENCH_BASELINE); see "Ours against the baseline".`);
  md.push('- **PeerJS server** 1.0.2 via its own CLI (`peerjs --port P --host 127.0.0.1 --concurrent_limit 100000 --alive_timeout 3600000`; the defaults refuse connection 5,001 and drop clients without heartbeats after 60 s). Messages are `{"type":"CANDIDATE","dst","payload"}`.');
  md.push('- **bare ws relay** (`packages/harness/src/bench/bare-ws-relay.ts`, `ws` 8): parses each frame once for `dst` and forwards it unchanged. No sessions, validation, acks or queueing: the floor.');
  if (c.systems.includes('sockjs')) md.push('- **bare sockjs relay** (`packages/harness/src/bench/bare-sockjs-relay.ts`, `sockjs` 0.3.24): the same forward-only relay on the library our node uses, over its websocket transport.');
  md.push('');
  const shapes = c.shapes.map((s) => `${String(s.pairs)} pairs with ${String(s.window)} in flight per pair (paced steps at ${s.fractions.map((fr) => `${String(fr * 100)} %`).join(', ')})`).join('; ');
  md.push(
    `**Load.** A separate load-generator process (\`packages/harness/src/bench/loadgen.ts\`) speaks the raw SockJS websocket transport to ours (\`<listeningAddress>/<server>/<session>/websocket\`) and plain WebSocket to the others, without compression. Every relay scenario runs in each shape: ${shapes}. Closed-loop runs keep the shape's messages in flight per pair (half each way) for ${String(c.seconds)} s after 1 s of warm-up; the same payload (≈200 B ICE candidate or ≈2 KB SDP, with a send timestamp) for every system. Latency is end to end (send → receipt, one clock). Paced runs send at a fixed rate (a 1 ms timer) for ${String(c.sweepSeconds)} s after 0.5 s of warm-up, at fractions of that round's closed-loop maximum in the same shape. CPU is user+system time of the server processes (from /proc) over the measurement window, divided by delivered messages. RSS is the VmRSS sum of the whole server side (ours: both nodes and the gateway; the others: their one process), before and after opening the idle connections on fresh processes; memcached is reported beside it. Connects follow on the same processes; the relays run on fresh ones, so no relay run carries another scenario's leftovers.`,
  );
  md.push('');
  return md;
}

export function renderReport(results: BenchResults): { markdown: string; svg: string; summary: Record<string, unknown> } {
  const summary = summarize(results);
  const verdict = judge(results);
  const systems = ORDER.filter((name) => results.config.systems.includes(name));
  const md = [
    ...introSection(results),
    ...targetsSection(results, verdict),
    ...baselineSection(results),
    ...relaySection(results, systems),
    ...latencySection(results, systems),
    ...receiptsSection(results),
    ...connectAndIdleSections(results, systems),
    ...perRoundSection(results, systems),
  ];
  const notes = fileURLToPath(new URL('./analysis.md', import.meta.url));
  if (existsSync(notes)) {
    md.push(readFileSync(notes, 'utf8').trim());
    md.push('');
  }
  return { markdown: `${md.join('\n')}\n`, svg: renderSvg(results), summary };
}
