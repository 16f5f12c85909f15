/**
 * The paper extrapolation of the scale run to 1,000 nodes and 1 M connections: per-unit costs measured in the run,
 * multiplied out with the law each one follows in this design. The prose that reads the table is analysis.md.
 */
import { PEER_LANES } from '@messaging-server/node';
import type { Figures } from './analysis.js';
import { table } from '../markdown.js';
import type { ScaleResult } from './run.js';

export const TARGET = { nodes: 1000, connections: 1_000_000, gateways: 10 };

export interface ExtrapolationRow {
  resource: string;
  measured: number | null;
  unit: string;
  law: string;
  atTarget: number | null;
}

/** Registered nodes, averaged over the join/drain phase's samples. */
function meanNodes(result: ScaleResult): number | null {
  const counts = result.nodeSamples.filter((s) => s.at >= result.trafficStartedAt && s.at <= result.trafficEndedAt).map((s) => Object.keys(s.connections).length);
  return counts.length === 0 ? null : counts.reduce((a, b) => a + b, 0) / counts.length;
}

const times = (a: number | null | undefined, b: number): number | null => (a === null || a === undefined ? null : a * b);

export function extrapolate(result: ScaleResult, f: Figures): ExtrapolationRow[] {
  const n = meanNodes(result);
  const g = result.config.gateways;
  const c = f.memory.connections;
  const r = f.rates;
  const writes = r ? (r.etcdMvccPerSecond['put_total'] ?? 0) + (r.etcdMvccPerSecond['delete_total'] ?? 0) : null;
  const perNode = (v: number | null): number | null => (v === null || n === null ? null : v / n);
  const watchersAtTarget = TARGET.nodes + TARGET.gateways;
  const keepalives = r ? (r.etcdByMethod['LeaseKeepAlive'] ?? 0) : null;
  const perConnection = (v: number | null | undefined): number | null => (v === null || v === undefined || !c ? null : v / c);
  const emptyMiB = f.memory.emptyNodeRssKiB === null ? null : f.memory.emptyNodeRssKiB / 1024;
  const marginalMiB = f.memory.marginalPerConnectionKiB === null ? null : f.memory.marginalPerConnectionKiB / 1024;
  const meshNow = n === null ? null : 2 * PEER_LANES * (n - 1);
  return [
    { resource: 'etcd writes (load updates, registrations, revokes)', measured: writes, unit: '/s', law: '≈ 1 per node per second while its count changes: × nodes', atTarget: times(perNode(writes), TARGET.nodes) },
    {
      resource: 'etcd watch events sent',
      measured: r?.etcdMvccPerSecond['events_total'] ?? null,
      unit: '/s',
      law: `every write reaches every watcher (each node and gateway watches the whole prefix): writes × (nodes + gateways), ${String(watchersAtTarget)} watchers`,
      atTarget: times(perNode(writes), TARGET.nodes * watchersAtTarget),
    },
    { resource: 'registry events each process parses', measured: r && r.etcdWatchers ? (r.etcdMvccPerSecond['events_total'] ?? 0) / r.etcdWatchers : null, unit: '/s', law: '= all writes: × nodes', atTarget: times(perNode(writes), TARGET.nodes) },
    { resource: 'etcd lease keepalives', measured: keepalives, unit: '/s', law: 'one per process per TTL/3: × processes', atTarget: keepalives === null || n === null ? null : (keepalives / (n + g)) * (TARGET.nodes + TARGET.gateways) },
    { resource: 'memcached commands (same churn, drains and messages per connection)', measured: r?.memcachedOpsPerSecond ?? null, unit: '/s', law: '× connections', atTarget: times(perConnection(r?.memcachedOpsPerSecond), TARGET.connections) },
    {
      resource: 'node memory, all nodes',
      measured: f.memory.rssPerConnectionKiB === null || c === null ? null : (f.memory.rssPerConnectionKiB * c) / 1024 / 1024,
      unit: 'GiB',
      law: 'empty node × nodes + marginal per connection × connections',
      atTarget: emptyMiB === null || marginalMiB === null ? null : (emptyMiB * TARGET.nodes + marginalMiB * TARGET.connections) / 1024,
    },
    { resource: 'node-to-node sockets per node (all peers in use)', measured: meshNow, unit: '', law: `${String(PEER_LANES)} lanes out + ${String(PEER_LANES)} in per peer: × nodes`, atTarget: 2 * PEER_LANES * (TARGET.nodes - 1) },
    { resource: 'node-to-node sockets, whole cluster', measured: n === null || meshNow === null ? null : (n * meshNow) / 2, unit: '', law: '× nodes²', atTarget: (TARGET.nodes * 2 * PEER_LANES * (TARGET.nodes - 1)) / 2 },
    { resource: 'share of random pairs split across nodes', measured: n === null ? null : (n - 1) / n, unit: '', law: '(nodes − 1) / nodes', atTarget: (TARGET.nodes - 1) / TARGET.nodes },
    { resource: 'nodes a gateway scans per /connect', measured: n, unit: '', law: '× nodes (least-loaded over every active node)', atTarget: TARGET.nodes },
  ];
}

const fmt = (v: number | null, unit: string): string => {
  if (v === null) return '–';
  if (unit === '' && v < 1) return `${(v * 100).toFixed(1)} %`;
  const text = v >= 100 ? Math.round(v).toLocaleString('en') : v.toFixed(1);
  return `${text}${unit === '' ? '' : ` ${unit}`}`;
};

export function extrapolationTable(result: ScaleResult, f: Figures): string {
  const n = meanNodes(result);
  return table(
    ['resource', `this run (~${n === null ? '–' : n.toFixed(0)} nodes, ~${f.memory.connections === null ? '–' : Math.round(f.memory.connections).toLocaleString('en')} connections)`, 'grows with', `${TARGET.nodes.toLocaleString('en')} nodes, 1 M connections, ${String(TARGET.gateways)} gateways`],
    extrapolate(result, f).map((row) => [row.resource, fmt(row.measured, row.unit), row.law, fmt(row.atTarget, row.unit)]),
  );
}
