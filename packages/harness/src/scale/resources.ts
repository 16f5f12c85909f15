/** What the scale run reads of its processes and backing services: RSS, CPU, etcd's and memcached's counters. */
import type { LocalCluster } from '@messaging-server/testkit';
import { scrapeConnections } from '../sampler.js';
import { childPids, cpuIfAlive, machineCpu, rssIfAlive, type MachineCpu } from '../proc.js';
import { readEtcd, readMemcached, type EtcdReading, type MemcachedReading } from './probes.js';

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

/** The scale run's resource readings, taken on every 5th tick of the cluster sampler and at the run's edges. */
export class ResourceSampler {
  readonly samples: ResourceSample[] = [];
  private readonly extraPids = new Map<string, number>();

  constructor(
    private readonly cluster: LocalCluster,
    private readonly note: (text: string) => void,
  ) {}

  /** Adds a process whose CPU is sampled under `name` (the load generator). */
  watch(name: string, pid: number): void {
    this.extraPids.set(name, pid);
  }

  async sample(): Promise<void> {
    const at = Date.now();
    const nodes = [...this.cluster.nodes.values()];
    const [etcd, memcached, counts] = await Promise.all([
      readEtcd(this.cluster.etcdEndpoint).catch((error: unknown) => this.failed('etcd /metrics', error)),
      readMemcached(this.cluster.memcachedAddress).catch((error: unknown) => this.failed('memcached stats', error)),
      Promise.all(nodes.map((n) => scrapeConnections(n.internalUrl, 1000))),
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
    this.samples.push(sample);
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
}
