/** Samples the cluster while the scale run goes: connections per node from the registry, and resources every 5th tick. */
import { EtcdRegistry } from '@messaging-server/core';
import type { LocalCluster } from '@messaging-server/testkit';
import { childPids, cpuIfAlive, machineCpu, readEtcd, readMemcached, rssIfAlive, type EtcdReading, type MachineCpu, type MemcachedReading } from './probes.js';

/**
 * The registry at one moment (epoch ms): each node's reported connections (a node without a load record yet is
 * left out), and which of them are draining.
 */
export interface NodeSample {
  at: number;
  connections: Record<string, number>;
  draining: string[];
}

export interface ResourceSample {
  at: number;
  /** RSS (KiB) of each node process still running. */
  nodeRssKiB: Record<string, number>;
  /** Each node's own count of open connections (its msg_connections gauge), the pairs of nodeRssKiB. */
  nodeConnections: Record<string, number>;
  gatewayRssKiB: number[];
  etcdRssKiB: number | null;
  memcachedRssKiB: number | null;
  etcd: EtcdReading | null;
  memcached: MemcachedReading | null;
  /**
   * CPU seconds used so far by each process of the run: `node:<id>`, `gateway:<name>`, `etcd`, `memcached`,
   * `loadgen`, `harness` (this process); and by the whole machine, including other users of it.
   */
  cpuSeconds: Record<string, number>;
  machine: MachineCpu;
}

async function nodeConnections(internalUrl: string): Promise<number | undefined> {
  try {
    const res = await fetch(`${internalUrl}/metrics`, { signal: AbortSignal.timeout(1000) });
    const match = /^msg_connections(?:\{[^}]*\})? (\d+)/m.exec(await res.text());
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

export class ClusterSampler {
  readonly nodeSamples: NodeSample[] = [];
  /** Each node's registration time (its record's `startedAt`, epoch ms), from the first sample that saw it. */
  readonly nodeStartedAt: Record<string, number> = {};
  readonly resourceSamples: ResourceSample[] = [];
  readonly errors: string[] = [];
  private readonly registry: EtcdRegistry;
  private timer: NodeJS.Timeout | undefined;
  private ticks = 0;
  private busy = false;
  private readonly extraPids = new Map<string, number>();

  constructor(
    private readonly cluster: LocalCluster,
    private readonly intervalMs: number,
  ) {
    this.registry = new EtcdRegistry({ endpoints: [cluster.etcdEndpoint], prefix: cluster.prefix, leaseTtlSeconds: 5, dialTimeoutMs: 1000 });
  }

  /** Adds a process whose CPU is sampled under `name` (the load generator). */
  watch(name: string, pid: number): void {
    this.extraPids.set(name, pid);
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      const withResources = this.ticks++ % 5 === 0;
      void Promise.all([this.sampleNodes(), withResources ? this.sampleResources() : undefined]).finally(() => (this.busy = false));
    }, this.intervalMs);
  }

  async sampleNodes(): Promise<void> {
    const at = Date.now();
    try {
      const { nodes, loads } = await this.registry.list();
      const sample: NodeSample = { at, connections: {}, draining: [] };
      for (const [id, record] of nodes) {
        this.nodeStartedAt[id] ??= Date.parse(record.startedAt);
        const load = loads.get(id);
        if (load) sample.connections[id] = load.connections;
        if (record.state === 'draining') sample.draining.push(id);
      }
      this.nodeSamples.push(sample);
    } catch (error) {
      this.note(`registry sample failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async sampleResources(): Promise<void> {
    const at = Date.now();
    const nodes = [...this.cluster.nodes.values()];
    const [etcd, memcached, counts] = await Promise.all([
      readEtcd(this.cluster.etcdEndpoint).catch((error: unknown) => this.failed('etcd /metrics', error)),
      readMemcached(this.cluster.memcachedAddress).catch((error: unknown) => this.failed('memcached stats', error)),
      Promise.all(nodes.map((n) => nodeConnections(n.internalUrl))),
    ]);
    const sample: ResourceSample = {
      at,
      nodeRssKiB: {},
      nodeConnections: {},
      gatewayRssKiB: this.cluster.gateways.map((g) => rssIfAlive(g.process.pid) ?? NaN),
      etcdRssKiB: rssIfAlive(childPids('etcd')[0]) ?? null,
      memcachedRssKiB: rssIfAlive(childPids('memcached')[0]) ?? null,
      etcd,
      memcached,
      cpuSeconds: this.cpuSeconds(),
      machine: machineCpu(),
    };
    nodes.forEach((node, i) => {
      const rss = rssIfAlive(node.process.pid);
      const connections = counts[i];
      // Only nodes with both figures, so the sum of RSS and the sum of connections cover the same processes.
      if (rss === undefined || connections === undefined) return;
      sample.nodeRssKiB[node.nodeId] = rss;
      sample.nodeConnections[node.nodeId] = connections;
    });
    this.resourceSamples.push(sample);
  }

  private cpuSeconds(): Record<string, number> {
    const pids: [string, number | undefined][] = [
      ...[...this.cluster.nodes.values()].map((n): [string, number | undefined] => [`node:${n.nodeId}`, n.process.pid]),
      ...this.cluster.gateways.map((g): [string, number | undefined] => [`gateway:${g.name}`, g.process.pid]),
      ['etcd', childPids('etcd')[0]],
      ['memcached', childPids('memcached')[0]],
      ['harness', process.pid],
      ...this.extraPids.entries(),
    ];
    const out: Record<string, number> = {};
    for (const [name, pid] of pids) {
      const seconds = cpuIfAlive(pid);
      if (seconds !== undefined) out[name] = seconds;
    }
    return out;
  }

  private failed(what: string, error: unknown): null {
    this.note(`${what} failed: ${error instanceof Error ? error.message : String(error)}`);
    return null;
  }

  private note(text: string): void {
    if (this.errors.length < 20) this.errors.push(text);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.registry.close();
  }
}
