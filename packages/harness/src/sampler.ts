/**
 * The one cluster sampler of the harness (chaos and scale): each node's connection count and which nodes drain, once
 * per interval, from the registry the gateways allocate by; from each node's own `msg_connections` gauge while etcd
 * cannot be read, when asked. A run may hang more work (the scale run's resource readings) on every nth tick.
 */
import { EtcdRegistry } from '@messaging-server/core';
import type { LocalCluster } from '@messaging-server/testkit';

/** Connections per node at one moment; a node without a load record yet is left out rather than shown as empty. */
export interface NodeSample {
  /** The run's clock (the sampler's `clock`): epoch ms unless the run gives its own. */
  at: number;
  /** `registry`: the nodes' `load/<nodeId>` keys. `metrics`: each node's own gauge, read while etcd is down. */
  source: 'registry' | 'metrics';
  connections: Record<string, number>;
  draining: string[];
}

export interface SamplerOptions {
  intervalMs: number;
  clock?: () => number;
  /** Read the nodes' gauges when the registry cannot be read (chaos: etcd is one of its faults). */
  metricsWhileRegistryDown?: boolean;
  dialTimeoutMs?: number;
  scrapeTimeoutMs?: number;
  /** More work on every `ticks`-th tick (the first included), run beside the node sample. */
  every?: { ticks: number; sample: () => Promise<void> };
}

/** A node's own count of open connections (its msg_connections gauge); undefined when it cannot be read. */
export async function scrapeConnections(internalUrl: string, timeoutMs: number): Promise<number | undefined> {
  try {
    const res = await fetch(`${internalUrl}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
    const match = /^msg_connections(?:\{[^}]*\})? (\d+)/m.exec(await res.text());
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

export class ClusterSampler {
  readonly samples: NodeSample[] = [];
  /** Each node's registration time (its record's `startedAt`, epoch ms), from the first sample that saw it. */
  readonly nodeStartedAt: Record<string, number> = {};
  /** The first 20 failures to read, for the report. */
  readonly errors: string[] = [];
  private readonly registry: EtcdRegistry;
  private readonly clock: () => number;
  private timer: NodeJS.Timeout | undefined;
  private ticks = 0;
  private busy = false;

  constructor(
    private readonly cluster: LocalCluster,
    private readonly options: SamplerOptions,
  ) {
    this.clock = options.clock ?? Date.now;
    this.registry = new EtcdRegistry({ endpoints: [cluster.etcdEndpoint], prefix: cluster.prefix, leaseTtlSeconds: 5, dialTimeoutMs: options.dialTimeoutMs ?? 1000 });
  }

  get latest(): NodeSample | undefined {
    return this.samples.at(-1);
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      const every = this.options.every;
      const more = every !== undefined && this.ticks++ % every.ticks === 0 ? every.sample() : undefined;
      void Promise.all([this.sample(), more]).finally(() => (this.busy = false));
    }, this.options.intervalMs);
  }

  async sample(): Promise<void> {
    const at = this.clock();
    try {
      const { nodes, loads } = await this.registry.list();
      const sample: NodeSample = { at, source: 'registry', connections: {}, draining: [] };
      for (const [id, record] of nodes) {
        this.nodeStartedAt[id] ??= Date.parse(record.startedAt);
        const load = loads.get(id);
        if (load) sample.connections[id] = load.connections;
        if (record.state === 'draining') sample.draining.push(id);
      }
      this.samples.push(sample);
    } catch (error) {
      this.note(`registry sample failed: ${error instanceof Error ? error.message : String(error)}`);
      if (this.options.metricsWhileRegistryDown === true) this.samples.push({ at, source: 'metrics', connections: await this.gauges(), draining: [] });
    }
  }

  /** Each running node's own gauge, by node id; nodes that do not answer are left out. */
  async gauges(): Promise<Record<string, number>> {
    const connections: Record<string, number> = {};
    await Promise.all(
      [...this.cluster.nodes.values()].map(async (node) => {
        const count = await scrapeConnections(node.internalUrl, this.options.scrapeTimeoutMs ?? 1000);
        if (count !== undefined) connections[node.nodeId] = count;
      }),
    );
    return connections;
  }

  /** How many nodes and gateways etcd holds right now (undefined while it cannot be read). */
  async latestRegistryView(): Promise<{ nodes: number; gateways: number } | undefined> {
    try {
      const { nodes, gateways } = await this.registry.list();
      return { nodes: nodes.size, gateways: gateways.size };
    } catch {
      return undefined;
    }
  }

  note(text: string): void {
    if (this.errors.length < 20) this.errors.push(text);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.registry.close();
  }
}
