import { EtcdRegistry } from '@messaging-server/core';
import type { LocalCluster } from '@messaging-server/testkit';

/** Sessions per node at one moment. */
export interface LoadSample {
  /** ms since the run's start. */
  at: number;
  /**
   * `registry`: the nodes' `load/<nodeId>` keys, what the gateways allocate by. `metrics`: each node's own
   * `msg_connections` gauge, used while etcd is down.
   */
  source: 'registry' | 'metrics';
  connections: Record<string, number>;
  draining: string[];
}

async function connectionsFromMetrics(internalUrl: string): Promise<number | undefined> {
  try {
    const res = await fetch(`${internalUrl}/metrics`, { signal: AbortSignal.timeout(500) });
    const match = /^msg_connections(?:\{[^}]*\})? (\d+)/m.exec(await res.text());
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Samples each node's connection count once per `intervalMs`, from etcd, or from the nodes while etcd is down. */
export class LoadSampler {
  readonly samples: LoadSample[] = [];
  private readonly registry: EtcdRegistry;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly cluster: LocalCluster,
    private readonly clock: () => number,
    private readonly intervalMs = 1000,
  ) {
    this.registry = new EtcdRegistry({ endpoints: [cluster.etcdEndpoint], prefix: cluster.prefix, leaseTtlSeconds: 5, dialTimeoutMs: 700 });
  }

  get latest(): LoadSample | undefined {
    return this.samples.at(-1);
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      void this.sample().finally(() => (this.busy = false));
    }, this.intervalMs);
  }

  async sample(): Promise<void> {
    const at = this.clock();
    try {
      const { nodes, loads } = await this.registry.list();
      const connections: Record<string, number> = {};
      const draining: string[] = [];
      for (const [nodeId, record] of nodes) {
        // A node without a load record yet (just registered, or re-registering after an etcd outage) is left out
        // rather than shown as empty.
        const load = loads.get(nodeId);
        if (load) connections[nodeId] = load.connections;
        if (record.state === 'draining') draining.push(nodeId);
      }
      this.samples.push({ at, source: 'registry', connections, draining });
    } catch {
      const connections: Record<string, number> = {};
      await Promise.all(
        [...this.cluster.nodes.values()].map(async (node) => {
          const count = await connectionsFromMetrics(node.internalUrl);
          if (count !== undefined) connections[node.nodeId] = count;
        }),
      );
      this.samples.push({ at, source: 'metrics', connections, draining: [] });
    }
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

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.registry.close();
  }
}
