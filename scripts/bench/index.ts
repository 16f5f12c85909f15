/**
 * `make bench`: ours, PeerJS server and a bare `ws` relay, side by side, on loopback, in one invocation.
 * Rounds interleave the systems (the order rotates each round) and the report uses per-round medians, so the
 * ratios hold on a shared, noisy machine. Writes docs/benchmarks.{md,json,svg}.
 *
 * Knobs (environment): BENCH_ROUNDS (3), BENCH_PAIRS (50), BENCH_WINDOW (8 in flight per pair), BENCH_SECONDS
 * (4, per closed-loop run), BENCH_IDLE ("5000,10000"), BENCH_CONNECTS (2000), BENCH_SYSTEMS ("ours,peerjs,ws"; add
 * "sockjs" for the bare sockjs relay, a reference between the bare ws relay and ours),
 * BENCH_OUT (docs). BENCH_QUICK=1 shrinks everything for a smoke run (the report says so).
 * `--render` rebuilds benchmarks.md/.svg from benchmarks.json without running anything.
 * Profiling: scripts/bench/profile.ts.
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { LoadGen } from './driver.js';
import type { SizeName } from './payload.js';
import { rssOf } from './procstat.js';
import { renderReport, type BenchResults, type ConnectRow, type IdleRow, type RelayRow, type SweepRow } from './report.js';
import { judge, sweepRowProblems } from './verdict.js';
import { ROOT, startBareSockJs, startBareWs, startOurs, startPeerJs, type RunningSystem } from './systems.js';

const env = process.env;
const quick = env['BENCH_QUICK'] === '1';
const config = {
  rounds: Number(env['BENCH_ROUNDS'] ?? (quick ? 1 : 3)),
  pairs: Number(env['BENCH_PAIRS'] ?? 50),
  window: Number(env['BENCH_WINDOW'] ?? 8),
  seconds: Number(env['BENCH_SECONDS'] ?? (quick ? 2 : 4)),
  sweepSeconds: quick ? 1.5 : 2.5,
  fractions: [0.25, 0.5, 0.75, 0.9],
  idle: (env['BENCH_IDLE'] ?? (quick ? '500,1000' : '5000,10000')).split(',').map(Number),
  connects: Number(env['BENCH_CONNECTS'] ?? (quick ? 300 : 2000)),
  connectConcurrency: 50,
  systems: (env['BENCH_SYSTEMS'] ?? 'ours,peerjs,ws').split(',') as RunningSystem['name'][],
  out: env['BENCH_OUT'] ?? `${ROOT}docs`,
  quick,
};

const started = Date.now();
function log(text: string): void {
  const t = ((Date.now() - started) / 1000).toFixed(0).padStart(4);
  process.stdout.write(`[bench ${t}s] ${text}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// 10,000 idle connections need more descriptors than a default shell allows, in the servers and the load generator.
// Children inherit the limit: raise it to 65536 where allowed (root with CAP_SYS_RESOURCE), else to the hard limit.
function raiseOpenFilesLimit(): number {
  const pid = String(process.pid);
  const read = (): number[] =>
    execFileSync('prlimit', ['--pid', pid, '--nofile', '--raw', '--noheadings', '--output', 'SOFT,HARD']).toString().trim().split(/\s+/).map(Number);
  try {
    execFileSync('prlimit', ['--pid', pid, '--nofile=65536:65536'], { stdio: 'ignore' });
  } catch {
    try {
      const hard = read()[1] ?? 0;
      execFileSync('prlimit', ['--pid', pid, `--nofile=${String(hard)}:${String(hard)}`], { stdio: 'ignore' });
    } catch {
      // keep what we have; checked below
    }
  }
  try {
    return read()[0] ?? 0;
  } catch {
    return 0;
  }
}
const openFiles = process.argv.includes('--render') ? 0 : raiseOpenFilesLimit();
if (!process.argv.includes('--render') && openFiles < Math.max(...config.idle) + 2000) {
  log(`open-files limit is ${String(openFiles)}: the idle scenario needs more than ${String(Math.max(...config.idle) + 2000)} (ulimit -n)`);
}

const results: BenchResults = {
  startedAt: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    memoryGiB: Math.round(Number(execFileSync('awk', ['/MemTotal/ {print $2}', '/proc/meminfo']).toString()) / 1048576),
  },
  config,
  relay: [],
  sweep: [],
  connect: [],
  idle: [],
  failures: [],
  durationSeconds: 0,
};

/** The median of three RSS readings of `pids` 300 ms apart (NaN when a process cannot be read). */
async function settledRss(pids: number[]): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    samples.push(readRss(pids));
    await sleep(300);
  }
  return samples.sort((a, b) => a - b)[1] as number;
}

function readRss(pids: number[]): number {
  try {
    return rssOf(pids);
  } catch {
    return Number.NaN;
  }
}

async function idleScenario(sys: RunningSystem, lg: LoadGen, round: number): Promise<void> {
  await sleep(500);
  // The whole server side holds idle connections' state (for ours: node-1's sockets, the gateway's /connect work,
  // node-2's share of the cluster); memcached's session records are reported beside it.
  const server = Object.entries(sys.serverPids);
  const pids = server.map(([, pid]) => pid);
  const beside = Object.entries(sys.otherPids).filter(([name]) => name === 'memcached');
  const base = readRss(pids);
  const baseBeside = Object.fromEntries(beside.map(([name, pid]) => [name, readRss([pid])]));
  let open = 0;
  let failed = 0;
  for (const target of config.idle) {
    const r = await lg.connect({
      target: sys.target,
      count: target - open,
      concurrency: 100,
      prefix: `idle${String(round)}-${String(target)}`,
      avoid: ['node-2'],
      keep: true,
    });
    open = r.open;
    failed += r.failed;
    if (r.failed > 0) log(`  idle: ${String(r.failed)} connections failed (${r.firstError ?? ''})`);
    await sleep(2000);
    const rss = await settledRss(pids);
    const row: IdleRow = {
      system: sys.name,
      round,
      target,
      connections: open,
      failed,
      serverProcesses: server.map(([name]) => name),
      baseKiB: base,
      rssKiB: rss,
      perConnectionKiB: (rss - base) / open,
      others: Object.fromEntries(beside.map(([name, pid]) => [name, (readRss([pid]) - (baseBeside[name] ?? Number.NaN)) / open])),
    };
    results.idle.push(row);
    log(`  idle ${sys.name}: ${String(open)} open, ${row.perConnectionKiB.toFixed(1)} KiB per connection over ${row.serverProcesses.join('+')} (rss ${(rss / 1024).toFixed(0)} MiB)`);
  }
  const closed = await lg.close();
  log(`  idle: closed ${String(closed.closed)}`);
  await sleep(sys.name === 'ours' ? 3000 : 500);
}

async function connectScenario(sys: RunningSystem, lg: LoadGen, round: number): Promise<void> {
  const r = await lg.connect({
    target: sys.target,
    count: config.connects,
    concurrency: config.connectConcurrency,
    prefix: `conn${String(round)}`,
    avoid: ['node-2'],
    keep: false,
  });
  const row: ConnectRow = { system: sys.name, round, rate: r.rate, latencyMs: r.latencyMs, completed: r.completed, failed: r.failed };
  if (r.firstError !== undefined) row.firstError = r.firstError;
  results.connect.push(row);
  log(`  connect ${sys.name}: ${r.rate.toFixed(0)}/s p50 ${r.latencyMs.p50.toFixed(1)} ms p99 ${r.latencyMs.p99.toFixed(1)} ms (${String(r.failed)} failed)`);
  await sleep(sys.name === 'ours' ? 1000 : 200);
}

async function relayScenario(sys: RunningSystem, lg: LoadGen, round: number, placement: 'one' | 'cross'): Promise<void> {
  const scenario = placement === 'one' ? 'relay-1' : 'relay-2';
  const pids = placement === 'one' ? sys.relayPids : sys.crossPids;
  await lg.pairs({
    target: sys.target,
    count: config.pairs,
    prefix: `r${String(round)}${placement}`,
    avoidA: ['node-2'],
    avoidB: placement === 'one' ? ['node-2'] : ['node-1'],
  });
  let max = 0;
  const sizes: SizeName[] = placement === 'one' ? ['candidate', 'sdp'] : ['candidate'];
  for (const size of sizes) {
    const others = Object.entries(sys.otherPids).filter(([name]) => name === 'memcached' || name === 'gateway' || name === 'etcd');
    const r = await lg.relay(
      { mode: 'closed', size, window: config.window, warmupMs: 1000, durationMs: config.seconds * 1000 },
      [...pids, ...others.map(([, pid]) => pid)],
    );
    // A pid without a CPU figure for the window makes the sum NaN: missing, which the verdict fails, never 0.
    const serverCpu = pids.reduce((sum, pid) => sum + (r.cpu[pid] ?? Number.NaN), 0);
    const row: RelayRow = {
      system: sys.name,
      scenario,
      size,
      round,
      rate: r.rate,
      latencyMs: r.latencyMs,
      cpuUsPerMessage: (serverCpu * 1e6) / Math.max(1, r.messages),
      serverCpuCores: serverCpu / r.seconds,
      writesPerMessage: pids.reduce((sum, pid) => sum + (r.syscalls[pid]?.writes ?? NaN), 0) / Math.max(1, r.messages),
      readsPerMessage: pids.reduce((sum, pid) => sum + (r.syscalls[pid]?.reads ?? NaN), 0) / Math.max(1, r.messages),
      loadgenCpuCores: r.loadgenCpu,
      errors: r.errors,
      errorCodes: r.errorCodes,
      sent: r.sent,
      lost: r.lost,
      otherCpuUsPerMessage: Object.fromEntries(others.map(([name, pid]) => [name, ((r.cpu[pid] ?? Number.NaN) * 1e6) / Math.max(1, r.messages)])),
    };
    results.relay.push(row);
    if (size === 'candidate') max = r.rate;
    log(
      `  ${scenario} ${size} ${sys.name}: ${r.rate.toFixed(0)} msg/s, ${row.cpuUsPerMessage.toFixed(1)} µs CPU/msg, ${row.writesPerMessage.toFixed(2)} writes/msg, server ${row.serverCpuCores.toFixed(2)} cores, loadgen ${r.loadgenCpu.toFixed(2)} cores, p99 ${r.latencyMs.p99.toFixed(1)} ms${r.errors ? `, ${String(r.errors)} errors ${JSON.stringify(r.errorCodes)}` : ''}`,
    );
  }
  for (const fraction of config.fractions) {
    const rate = Math.max(100, Math.round(max * fraction));
    const r = await lg.relay({ mode: 'paced', size: 'candidate', rate, warmupMs: 500, durationMs: config.sweepSeconds * 1000 }, pids);
    const row: SweepRow = {
      system: sys.name,
      scenario,
      round,
      fraction,
      targetRate: rate,
      rate: r.rate,
      latencyMs: r.latencyMs,
      skipped: r.skipped,
      errors: r.errors,
      errorCodes: r.errorCodes,
      sent: r.sent,
      lost: r.lost,
    };
    results.sweep.push(row);
    const problems = sweepRowProblems(row);
    log(
      `  ${scenario} ${sys.name} at ${String(fraction * 100)} % (${String(rate)}/s): delivered ${r.rate.toFixed(0)}/s, p50 ${r.latencyMs.p50.toFixed(2)} ms p99 ${r.latencyMs.p99.toFixed(2)} ms` +
        (problems.length > 0 ? ` — does not count: ${problems.join('; ')}` : ''),
    );
  }
  await lg.close();
}

async function runSystem(name: RunningSystem['name'], round: number): Promise<void> {
  log(`round ${String(round)}: starting ${name}`);
  const sys =
    name === 'ours' ? await startOurs() : name === 'peerjs' ? await startPeerJs() : name === 'sockjs' ? await startBareSockJs() : await startBareWs();
  const lg = await LoadGen.start((text) => log(`  ${text}`));
  try {
    // Idle first, on a fresh process: its RSS growth is then the connections', not the relay runs' heap.
    await idleScenario(sys, lg, round);
    if (name === 'ours' || name === 'peerjs') await connectScenario(sys, lg, round);
    await relayScenario(sys, lg, round, 'one');
    if (name === 'ours') await relayScenario(sys, lg, round, 'cross');
  } finally {
    await lg.stop();
    await sys.stop();
  }
}

async function main(): Promise<void> {
  log(`machine: ${String(results.machine.cpus)} × ${results.machine.cpuModel}, node ${results.machine.node}, open files ${String(openFiles)}; config ${JSON.stringify(config)}`);
  for (let round = 1; round <= config.rounds; round += 1) {
    const order = config.systems.map((_, i) => config.systems[(i + round - 1) % config.systems.length] as RunningSystem['name']);
    for (const name of order) {
      // A failed system run is recorded and the bench goes on: its round then has no figures, which the verdict
      // reports as missing data, instead of the other rounds' medians quietly standing in for it.
      await runSystem(name, round).catch((error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        results.failures.push({ system: name, round, error: message });
        log(`round ${String(round)}: ${name} FAILED: ${message}`);
      });
    }
  }
  results.durationSeconds = (Date.now() - started) / 1000;
  const { markdown, svg, summary } = renderReport(results);
  writeFileSync(`${config.out}/benchmarks.json`, `${JSON.stringify({ ...results, summary }, null, 2)}\n`);
  writeFileSync(`${config.out}/benchmarks.svg`, svg);
  writeFileSync(`${config.out}/benchmarks.md`, markdown);
  log(`wrote ${config.out}/benchmarks.{md,json,svg} in ${results.durationSeconds.toFixed(0)} s`);
  const { failures } = judge(results);
  for (const failure of failures) process.stderr.write(`bench: FAILED: ${failure}\n`);
  if (failures.length > 0) process.exitCode = 1;
  else log('verdict: every target met, on valid data from every round');
}

/** `index.ts --render`: rebuilds the Markdown and SVG from docs/benchmarks.json (after editing analysis.md). */
function renderOnly(): void {
  const loaded = JSON.parse(readFileSync(`${config.out}/benchmarks.json`, 'utf8')) as BenchResults;
  // Results recorded before failed rounds were kept have no list of them; their rows' missing fields fail the verdict.
  const saved: BenchResults = { ...loaded, failures: loaded.failures ?? [] };
  const { markdown, svg } = renderReport(saved);
  writeFileSync(`${config.out}/benchmarks.svg`, svg);
  writeFileSync(`${config.out}/benchmarks.md`, markdown);
  log(`rendered ${config.out}/benchmarks.{md,svg} from benchmarks.json`);
}

(process.argv.includes('--render') ? Promise.resolve().then(renderOnly) : main()).then(
  () => process.exit(process.exitCode ?? 0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
