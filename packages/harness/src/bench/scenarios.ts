/** The bench's scenarios on one running system: idle memory, connects, and relays in each shape. Each records rows. */
import { cpuSecondsOf, type LoadGen } from './driver.js';
import type { SizeName } from './payload.js';
import { elsewhereCpu, rssOf } from '../proc.js';
import { shapeKey, shapeLabel, type BenchConfig, type BenchResults, type ConnectRow, type IdleRow, type RelayRow, type Shape, type StormRow, type SweepRow } from './results.js';
import type { RunningSystem } from './systems.js';
import { BUSY_ELSEWHERE_LIMIT, sweepRowProblems } from './verdict.js';

export interface ScenarioContext {
  config: BenchConfig;
  results: BenchResults;
  log: (text: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Our cluster (either build) needs a moment after closing connections: sessions and loads settle through etcd. */
const isCluster = (sys: RunningSystem): boolean => sys.name === 'ours' || sys.name === 'base';

function readRss(pids: number[]): number {
  try {
    return rssOf(pids);
  } catch {
    return Number.NaN;
  }
}

/** The median of three RSS readings of `pids` 300 ms apart (NaN when a process cannot be read). */
async function settledRss(pids: number[]): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    samples.push(readRss(pids));
    await sleep(300);
  }
  return samples.sort((a, b) => a - b)[1] as number;
}

export async function idleScenario(ctx: ScenarioContext, sys: RunningSystem, lg: LoadGen, round: number): Promise<void> {
  await sleep(500);
  // The whole server side holds idle connections' state (for ours: node-1's sockets, the gateway's /connect work,
  // node-2's share of the cluster); memcached's session records are reported beside it.
  const server = Object.entries(sys.serverPids);
  const pids = server.map(([, pid]) => pid);
  const beside = Object.entries(sys.otherPids).filter(([name]) => name === 'memcached');
  const base = readRss(pids);
  const baseEach = Object.fromEntries(server.map(([name, pid]) => [name, readRss([pid])]));
  const baseBeside = Object.fromEntries(beside.map(([name, pid]) => [name, readRss([pid])]));
  let open = 0;
  let failed = 0;
  for (const target of ctx.config.idle) {
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
    if (r.failed > 0) ctx.log(`  idle: ${String(r.failed)} connections failed (${r.firstError ?? ''})`);
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
      byProcess: Object.fromEntries(server.map(([name, pid]) => [name, (readRss([pid]) - (baseEach[name] ?? Number.NaN)) / open])),
      others: Object.fromEntries(beside.map(([name, pid]) => [name, (readRss([pid]) - (baseBeside[name] ?? Number.NaN)) / open])),
    };
    ctx.results.idle.push(row);
    ctx.log(`  idle ${sys.name}: ${String(open)} open, ${row.perConnectionKiB.toFixed(1)} KiB per connection over ${row.serverProcesses.join('+')} (rss ${(rss / 1024).toFixed(0)} MiB)`);
  }
  const closed = await lg.close();
  ctx.log(`  idle: closed ${String(closed.closed)}`);
  await sleep(isCluster(sys) ? 3000 : 500);
}

export async function connectScenario(ctx: ScenarioContext, sys: RunningSystem, lg: LoadGen, round: number): Promise<void> {
  const ours = [...Object.values(sys.serverPids), ...Object.values(sys.otherPids), lg.pid];
  let attempt = 0;
  await untilQuiet(ctx, `${sys.name} connects`, async () => {
    attempt += 1;
    const before = elsewhereCpu(ours);
    const r = await lg.connect({
      target: sys.target,
      count: ctx.config.connects,
      concurrency: ctx.config.connectConcurrency,
      prefix: `conn${String(round)}-${String(attempt)}`,
      avoid: ['node-2'],
      keep: false,
    });
    const row: ConnectRow = { system: sys.name, round, rate: r.rate, latencyMs: r.latencyMs, completed: r.completed, failed: r.failed };
    if (r.firstError !== undefined) row.firstError = r.firstError;
    // CPU times come in 10 ms ticks per process: over a run shorter than a second that rounding alone could read as
    // a tenth of a core, so the reading spans at least one second.
    if (r.seconds < 1) await sleep((1 - r.seconds) * 1000);
    row.busyElsewhereCores = (elsewhereCpu(ours) - before) / Math.max(1, r.seconds);
    ctx.results.connect.push(row);
    ctx.log(
      `  connect ${sys.name}: ${r.rate.toFixed(0)}/s p50 ${r.latencyMs.p50.toFixed(1)} ms p99 ${r.latencyMs.p99.toFixed(1)} ms (${String(r.failed)} failed), elsewhere ${row.busyElsewhereCores.toFixed(2)} cores`,
    );
    return [row];
  });
  await sleep(isCluster(sys) ? 1000 : 200);
}

/**
 * The reconnect storm: `stormClients` idle clients on node-1, which is then SIGKILLed. Each client reconnects as
 * soon as its connection drops (after the SDK's first full-jitter delay, up to 250 ms), avoiding node-1; the figure
 * is the time from the kill to the last welcome on node-2.
 */
export async function stormScenario(ctx: ScenarioContext, sys: RunningSystem, lg: LoadGen, round: number): Promise<void> {
  const clients = ctx.config.stormClients;
  const opened = await lg.connect({ target: sys.target, count: clients, concurrency: ctx.config.connectConcurrency, prefix: `storm${String(round)}`, avoid: ['node-2'], keep: true });
  ctx.log(`  storm: ${String(opened.open)} idle clients on node-1 (${String(opened.failed)} failed); SIGKILL node-1`);
  await lg.armStorm({ target: sys.target, avoid: ['node-1'], jitterMs: 250, timeoutMs: 30_000 });
  const killedAt = Date.now();
  process.kill(sys.relayPids[0] as number, 'SIGKILL');
  const r = await lg.stormResult();
  const row: StormRow = {
    system: sys.name,
    round,
    clients: opened.open,
    reconnected: r.reconnected,
    failed: r.failed + opened.failed,
    lastWelcomeMs: r.lastWelcomeAt - killedAt,
    latencyMs: r.latencyMs,
  };
  if (r.firstError !== undefined) row.firstError = r.firstError;
  ctx.results.storm.push(row);
  ctx.log(
    `  storm ${sys.name}: ${String(r.reconnected)}/${String(opened.open)} back on node-2, last welcome ${String(row.lastWelcomeMs)} ms after the kill (p50 ${r.latencyMs.p50.toFixed(0)} ms, p99 ${r.latencyMs.p99.toFixed(0)} ms from each close)`,
  );
}

/** Our gateway, memcached and etcd: their CPU is recorded beside the servers' (and is not someone else's work). */
export function besideServers(sys: RunningSystem): [string, number][] {
  return Object.entries(sys.otherPids).filter(([name]) => name === 'memcached' || name === 'gateway' || name === 'etcd');
}

const ATTEMPTS = 3;

/**
 * Runs `measure` (one run, or ours's and base's pair of runs, or a connect run) again while the machine was busy with other work
 * during it, up to ATTEMPTS in all, `pauseMs` apart; only the last attempt's rows stay recorded. A last attempt that is
 * still disturbed stays, and the verdict does not count it.
 */
export async function untilQuiet(ctx: ScenarioContext, what: string, measure: () => Promise<(RelayRow | SweepRow | ConnectRow)[]>, pauseMs = 3000): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    const rows = await measure();
    const busy = Math.max(0, ...rows.map((r) => r.busyElsewhereCores ?? 0));
    if (!(busy > BUSY_ELSEWHERE_LIMIT) || attempt >= ATTEMPTS) return;
    ctx.log(`  ${what}: the machine was busy elsewhere (${busy.toFixed(2)} cores); measuring again (${String(attempt + 1)} of ${String(ATTEMPTS)})`);
    const stale = new Set<object>(rows);
    ctx.results.relay = ctx.results.relay.filter((r) => !stale.has(r));
    ctx.results.sweep = ctx.results.sweep.filter((r) => !stale.has(r));
    ctx.results.connect = ctx.results.connect.filter((r) => !stale.has(r));
    ctx.results.receipts = ctx.results.receipts.filter((r) => !stale.has(r));
    await sleep(pauseMs);
  }
}

export interface RelayPlan {
  placement: 'one' | 'cross';
  shape: Shape;
  /** Closed-loop sizes, in order; the first (200 B) run sets the paced steps' 100 %. */
  sizes: SizeName[];
  /** Whether to run the shape's paced steps after the closed-loop runs. */
  paced: boolean;
}

/** One closed-loop run of `size` on the pairs open in `lg`; returns its row. */
export async function closedLoop(ctx: ScenarioContext, sys: RunningSystem, lg: LoadGen, round: number, plan: RelayPlan, size: SizeName): Promise<RelayRow> {
  const scenario = plan.placement === 'one' ? 'relay-1' : 'relay-2';
  const pids = plan.placement === 'one' ? sys.relayPids : sys.crossPids;
  const others = besideServers(sys);
  const r = await lg.relay(
    { mode: 'closed', size, window: plan.shape.window, warmupMs: 1000, durationMs: ctx.config.seconds * 1000 },
    [...pids, ...others.map(([, pid]) => pid)],
  );
  const row = relayRowOf(sys, round, plan, size, r);
  ctx.results.relay.push(row);
  ctx.log(
    `  ${scenario} ${row.shape} ${size} ${sys.name}: ${r.rate.toFixed(0)} msg/s, ${row.cpuUsPerMessage.toFixed(1)} µs CPU/msg, ${row.writesPerMessage.toFixed(2)} writes/msg, server ${row.serverCpuCores.toFixed(2)} cores, loadgen ${r.loadgenCpu.toFixed(2)} cores, p99 ${r.latencyMs.p99.toFixed(1)} ms, elsewhere ${(row.busyElsewhereCores ?? NaN).toFixed(2)} cores${r.errors ? `, ${String(r.errors)} errors ${JSON.stringify(r.errorCodes)}` : ''}`,
  );
  return row;
}

/** The row of one closed-loop run: CPU, system calls and latency of the relaying node(s) (both nodes across nodes). */
export function relayRowOf(sys: RunningSystem, round: number, plan: RelayPlan, size: SizeName, r: Awaited<ReturnType<LoadGen['relay']>>): RelayRow {
  const scenario = plan.placement === 'one' ? 'relay-1' : 'relay-2';
  const pids = plan.placement === 'one' ? sys.relayPids : sys.crossPids;
  const others = besideServers(sys);
  // A pid without a CPU figure makes the sum NaN: missing, which the verdict fails.
  const serverCpu = cpuSecondsOf(r, pids);
  return {
    system: sys.name,
    scenario,
    shape: shapeKey(plan.shape),
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
    otherCpuUsPerMessage: Object.fromEntries(others.map(([name, pid]) => [name, (cpuSecondsOf(r, [pid]) * 1e6) / Math.max(1, r.messages)])),
    busyElsewhereCores: r.elsewhere / r.seconds,
  };
}

async function pacedStep(ctx: ScenarioContext, sys: RunningSystem, lg: LoadGen, round: number, plan: RelayPlan, fraction: number, max: number): Promise<SweepRow> {
  const scenario = plan.placement === 'one' ? 'relay-1' : 'relay-2';
  const rate = Math.max(100, Math.round(max * fraction));
  const r = await lg.relay(
    { mode: 'paced', size: 'candidate', rate, warmupMs: 500, durationMs: ctx.config.sweepSeconds * 1000 },
    [...(plan.placement === 'one' ? sys.relayPids : sys.crossPids), ...besideServers(sys).map(([, pid]) => pid)],
  );
  const row: SweepRow = {
    system: sys.name,
    scenario,
    shape: shapeKey(plan.shape),
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
    busyElsewhereCores: r.elsewhere / r.seconds,
  };
  ctx.results.sweep.push(row);
  const problems = sweepRowProblems(row);
  ctx.log(
    `  ${scenario} ${row.shape} ${sys.name} at ${String(fraction * 100)} % (${String(rate)}/s): delivered ${r.rate.toFixed(0)}/s, p50 ${r.latencyMs.p50.toFixed(2)} ms p99 ${r.latencyMs.p99.toFixed(2)} ms, elsewhere ${(row.busyElsewhereCores ?? NaN).toFixed(2)} cores` +
      (problems.length > 0 ? ` — does not count: ${problems.join('; ')}` : ''),
  );
  return row;
}

/** Opens the plan's pairs in `lg` (on one node, or each pair's sides on different nodes), closing any open before. */
export async function openPairs(ctx: ScenarioContext, sys: RunningSystem, lg: LoadGen, round: number, plan: RelayPlan): Promise<void> {
  ctx.log(`  ${sys.name}, ${plan.placement === 'one' ? 'one node' : 'across nodes'}, ${shapeLabel(plan.shape)} in flight: opening ${String(plan.shape.pairs)} pairs`);
  await lg.pairs({
    target: sys.target,
    count: plan.shape.pairs,
    prefix: `r${String(round)}${plan.placement}${shapeKey(plan.shape)}`,
    avoidA: ['node-2'],
    avoidB: plan.placement === 'one' ? ['node-2'] : ['node-1'],
  });
}

/** The plan's paced steps on the pairs open in `lg`, at fractions of `max` (the 200 B closed-loop rate). */
export async function pacedSteps(ctx: ScenarioContext, sys: RunningSystem, lg: LoadGen, round: number, plan: RelayPlan, max: number): Promise<void> {
  if (!plan.paced || !Number.isFinite(max)) return;
  for (const fraction of plan.shape.fractions) {
    await untilQuiet(ctx, `${sys.name} paced step at ${String(fraction * 100)} %`, async () => [await pacedStep(ctx, sys, lg, round, plan, fraction, max)]);
  }
}

/** The whole plan on one system: its pairs, the closed-loop runs in order, then the paced steps. */
export async function relayScenario(ctx: ScenarioContext, sys: RunningSystem, lg: LoadGen, round: number, plan: RelayPlan): Promise<void> {
  await openPairs(ctx, sys, lg, round, plan);
  let max = Number.NaN;
  for (const size of plan.sizes) {
    await untilQuiet(ctx, `${sys.name} ${size} run`, async () => {
      const row = await closedLoop(ctx, sys, lg, round, plan, size);
      if (size === 'candidate') max = row.rate;
      return [row];
    });
  }
  await pacedSteps(ctx, sys, lg, round, plan, max);
  await lg.close();
}
