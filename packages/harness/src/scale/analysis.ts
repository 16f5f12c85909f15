/**
 * The scale run's figures, derived from its raw samples. Every figure is null when its data is missing: a missing
 * figure must read as "not measured", never as a zero (verdict.ts turns nulls into failures).
 */
import { median, percentiles, type Percentiles } from '../stats.js';
import type { ScaleResult } from './run.js';
import type { ResourceSample } from './resources.js';
import { roomFigures, type RoomFigures } from './rooms-analysis.js';

export interface SpreadPoint {
  /** Seconds since traffic started. */
  at: number;
  eligible: number;
  mean: number;
  max: number;
  min: number;
  maxNode: string;
  /** (max − mean) / mean. */
  over: number;
}

export interface Spread {
  points: SpreadPoint[];
  worst: SpreadPoint | null;
}

/**
 * Connection spread among the nodes that are active and were registered at least `settleSeconds` before the
 * sample: a joined node starts empty and fills from reconnects and new users, and a draining node empties by design.
 */
export function spread(result: ScaleResult): Spread {
  const settleMs = result.config.settleSeconds * 1000;
  const points: SpreadPoint[] = [];
  for (const sample of result.nodeSamples) {
    if (sample.at < result.trafficStartedAt || sample.at > result.trafficEndedAt) continue;
    const eligible = Object.entries(sample.connections).filter(([id]) => {
      const registered = result.nodeStartedAt[id];
      return !sample.draining.includes(id) && registered !== undefined && sample.at - registered >= settleMs;
    });
    if (eligible.length === 0) continue;
    const counts = eligible.map(([, n]) => n);
    const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
    const [maxNode, max] = eligible.reduce((best, entry) => (entry[1] > best[1] ? entry : best));
    const over = mean > 0 ? (max - mean) / mean : Number.POSITIVE_INFINITY;
    points.push({ at: (sample.at - result.trafficStartedAt) / 1000, eligible: eligible.length, mean, max, min: Math.min(...counts), maxNode, over });
  }
  const worst = points.reduce<SpreadPoint | null>((w, p) => (w === null || p.over > w.over ? p : w), null);
  return { points, worst };
}

export interface JoinRow {
  nodeId: string;
  /** Registration (the node's own `startedAt`, written just before its etcd put), seconds since traffic started. */
  registeredAt: number | null;
  /** Per gateway: ms from registration to that gateway's first /connect answer naming the node; null = never. */
  delaysMs: (number | null)[];
}

export interface Propagation {
  joins: JoinRow[];
  delays: Percentiles;
  /** "gateway-2 → node-23" for every pair that never happened (or whose registration was never seen). */
  missing: string[];
}

/** Node joins → first allocation to it on every gateway. */
export function propagation(result: ScaleResult): Propagation {
  const gateways = result.config.gateways;
  const joins: JoinRow[] = [];
  const missing: string[] = [];
  const all: number[] = [];
  for (const event of result.timeline.filter((e) => e.event === 'join')) {
    const at = result.nodeStartedAt[event.nodeId];
    const delaysMs = Array.from({ length: gateways }, (_, g) => {
      const first = result.load.allocations.byGateway[g]?.[event.nodeId]?.first;
      if (at === undefined || first === undefined) {
        missing.push(`gateway-${String(g + 1)} → ${event.nodeId}`);
        return null;
      }
      all.push(first - at);
      return first - at;
    });
    joins.push({ nodeId: event.nodeId, registeredAt: at === undefined ? null : (at - result.trafficStartedAt) / 1000, delaysMs });
  }
  return { joins, delays: percentiles(all), missing };
}

export interface Rates {
  seconds: number;
  etcdRequestsPerSecond: number;
  etcdByMethod: Record<string, number>;
  etcdMvccPerSecond: Record<string, number>;
  /** etcd_debugging_mvcc_watcher_total at the end: open watchers. */
  etcdWatchers: number | null;
  memcachedOpsPerSecond: number;
  memcachedByCommand: Record<string, number>;
  memcachedItems: number | null;
  memcachedBytesPerItem: number | null;
}

function inTraffic(result: ScaleResult): ResourceSample[] {
  return result.resourceSamples.filter((s) => s.at >= result.trafficStartedAt && s.at <= result.trafficEndedAt);
}

const perSecond = (after: Record<string, number>, before: Record<string, number>, seconds: number): Record<string, number> =>
  Object.fromEntries(Object.keys(after).map((k) => [k, ((after[k] ?? 0) - (before[k] ?? 0)) / seconds]));

/** etcd and memcached work per second over the join/drain phase (first to last reading inside it). */
export function rates(result: ScaleResult): Rates | null {
  const withBoth = inTraffic(result).filter((s) => s.etcd !== null && s.memcached !== null);
  const first = withBoth[0];
  const last = withBoth.at(-1);
  if (!first?.etcd || !first.memcached || !last?.etcd || !last.memcached || last === first) return null;
  const seconds = (last.at - first.at) / 1000;
  const etcdByMethod = perSecond(last.etcd.received, first.etcd.received, seconds);
  const mvcc = perSecond(last.etcd.mvcc, first.etcd.mvcc, seconds);
  const counters = ['put_total', 'range_total', 'txn_total', 'delete_total', 'events_total'];
  const memcachedKeys = ['cmd_get', 'cmd_set', 'cmd_touch', 'delete_hits', 'delete_misses'];
  const memcachedByCommand = perSecond(
    Object.fromEntries(memcachedKeys.map((k) => [k, last.memcached?.[k] ?? 0])),
    Object.fromEntries(memcachedKeys.map((k) => [k, first.memcached?.[k] ?? 0])),
    seconds,
  );
  const items = last.memcached['curr_items'];
  const bytes = last.memcached['bytes'];
  return {
    seconds,
    etcdRequestsPerSecond: Object.values(etcdByMethod).reduce((a, b) => a + b, 0),
    etcdByMethod: Object.fromEntries(Object.entries(etcdByMethod).filter(([, v]) => v > 0)),
    etcdMvccPerSecond: Object.fromEntries(counters.map((k) => [k, mvcc[k] ?? 0])),
    etcdWatchers: last.etcd.mvcc['watcher_total'] ?? null,
    memcachedOpsPerSecond: Object.values(memcachedByCommand).reduce((a, b) => a + b, 0),
    memcachedByCommand,
    memcachedItems: items ?? null,
    memcachedBytesPerItem: items !== undefined && bytes !== undefined && items > 0 ? bytes / items : null,
  };
}

export interface Memory {
  /** Median over the phase's samples of (sum of node RSS) / (sum of their connections). */
  rssPerConnectionKiB: number | null;
  /** The same after taking away each node's RSS before it had any connection (the baseline's mean). */
  marginalPerConnectionKiB: number | null;
  /** Idle connections only: each node's RSS once every client was open (before any message) minus its own baseline. */
  idlePerConnectionKiB: number | null;
  emptyNodeRssKiB: number | null;
  gatewayRssKiB: number | null;
  etcdRssKiB: number | null;
  memcachedRssKiB: number | null;
  connections: number | null;
}

const medianOrNull = (values: number[]): number | null => (values.length === 0 ? null : median(values));

function idlePerConnection(result: ScaleResult): number | null {
  const before = result.baseline?.nodeRssKiB ?? {};
  let grown = 0;
  let connections = 0;
  for (const [id, rss] of Object.entries(result.afterOpen?.nodeRssKiB ?? {})) {
    const empty = before[id];
    if (empty === undefined) continue;
    grown += rss - empty;
    connections += result.afterOpen?.nodeConnections[id] ?? 0;
  }
  return connections > 0 ? grown / connections : null;
}

export function memory(result: ScaleResult): Memory {
  const samples = inTraffic(result);
  const baselineValues = Object.values(result.baseline?.nodeRssKiB ?? {});
  const empty = baselineValues.length > 0 ? baselineValues.reduce((a, b) => a + b, 0) / baselineValues.length : null;
  const per: number[] = [];
  const marginal: number[] = [];
  const totals: number[] = [];
  for (const s of samples) {
    const rss = Object.values(s.nodeRssKiB).reduce((a, b) => a + b, 0);
    const connections = Object.values(s.nodeConnections).reduce((a, b) => a + b, 0);
    if (connections <= 0) continue;
    per.push(rss / connections);
    totals.push(connections);
    if (empty !== null) marginal.push((rss - empty * Object.keys(s.nodeRssKiB).length) / connections);
  }
  const last = samples.at(-1);
  const gateways = last?.gatewayRssKiB.filter(Number.isFinite) ?? [];
  return {
    rssPerConnectionKiB: medianOrNull(per),
    marginalPerConnectionKiB: medianOrNull(marginal),
    idlePerConnectionKiB: idlePerConnection(result),
    emptyNodeRssKiB: empty,
    gatewayRssKiB: gateways.length > 0 ? gateways.reduce((a, b) => a + b, 0) / gateways.length : null,
    etcdRssKiB: last?.etcdRssKiB ?? null,
    memcachedRssKiB: last?.memcachedRssKiB ?? null,
    connections: medianOrNull(totals),
  };
}

/**
 * CPU cores used on average over the join/drain phase, per kind of process; the machine's process time, interrupts
 * (loopback networking for everyone) and steal; `other`: process time not ours (other users of the machine, and our
 * nodes in the interval they started or exited).
 */
export interface CpuUse {
  seconds: number;
  cores: Record<string, number>;
  machineProcesses: number;
  interrupts: number;
  steal: number;
  other: number;
}

const groupOf = (name: string): string => name.split(':')[0] ?? name;

/** Sums, interval by interval, the CPU of processes present at both ends (nodes come and go). */
export function cpuUse(result: ScaleResult): CpuUse | null {
  const samples = inTraffic(result).filter((s) => s.cpuSeconds !== undefined);
  if (samples.length < 2) return null;
  const cpu: Record<string, number> = {};
  for (let i = 1; i < samples.length; i += 1) {
    const [a, b] = [samples[i - 1] as ResourceSample, samples[i] as ResourceSample];
    for (const [name, after] of Object.entries(b.cpuSeconds)) {
      const before = a.cpuSeconds[name];
      if (before !== undefined) cpu[groupOf(name)] = (cpu[groupOf(name)] ?? 0) + after - before;
    }
  }
  const first = samples[0] as ResourceSample;
  const last = samples.at(-1) as ResourceSample;
  const seconds = (last.at - first.at) / 1000;
  const rate = (key: keyof ResourceSample['machine']): number => (last.machine[key] - first.machine[key]) / seconds;
  const cores = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / seconds]));
  const ours = Object.values(cores).reduce((a, b) => a + b, 0);
  const machineProcesses = rate('processes');
  return { seconds, cores, machineProcesses, interrupts: rate('interrupts'), steal: rate('steal'), other: Math.max(0, machineProcesses - ours) };
}

/** Between two consecutive resource samples (seconds since the phase started): cores used by our nodes, and by processes not ours. */
export interface CpuInterval {
  from: number;
  to: number;
  nodes: number;
  other: number;
}

export function cpuIntervals(result: ScaleResult): CpuInterval[] {
  const samples = result.resourceSamples;
  const out: CpuInterval[] = [];
  for (let i = 1; i < samples.length; i += 1) {
    const [a, b] = [samples[i - 1] as ResourceSample, samples[i] as ResourceSample];
    const seconds = (b.at - a.at) / 1000;
    if (seconds <= 0) continue;
    let nodes = 0;
    let ours = 0;
    for (const [name, after] of Object.entries(b.cpuSeconds)) {
      const before = a.cpuSeconds[name];
      if (before === undefined) continue;
      ours += after - before;
      if (groupOf(name) === 'node') nodes += after - before;
    }
    const other = Math.max(0, b.machine.processes - a.machine.processes - ours) / seconds;
    out.push({ from: (a.at - result.trafficStartedAt) / 1000, to: (b.at - result.trafficStartedAt) / 1000, nodes: nodes / seconds, other });
  }
  return out;
}

export interface Figures {
  spread: Spread;
  propagation: Propagation;
  rates: Rates | null;
  memory: Memory;
  cpu: CpuUse | null;
  rooms: RoomFigures | null;
}

export function figures(result: ScaleResult): Figures {
  return { spread: spread(result), propagation: propagation(result), rates: rates(result), memory: memory(result), cpu: cpuUse(result), rooms: roomFigures(result) };
}
