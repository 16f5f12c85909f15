import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { backendOperationMetrics, registerBuildInfo, type BackendOperationHook } from '@messaging-server/core';

export interface GatewayMetricsSource {
  nodeCounts(): { active: number; draining: number };
  registrySynced(): boolean;
}

/** The gateway's Prometheus metrics, on their own registry (never prom-client's global one). */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly connectRequests: Counter<'result'>;
  readonly connectLatency: Histogram<'result'>;
  /** Label `node_id`, as on every node metric (one label style across the cluster's metrics). */
  readonly allocations: Counter<'node_id'>;
  readonly sessionStoreErrors: Counter;
  /** /connect limit decisions this gateway took alone, the shared count being late or failed (memcached). */
  readonly connectLimitFallbacks: Counter;
  readonly leaseState: Gauge;
  /** Feed for the instrumented registry and session store: `msg_etcd_*` and `msg_memcached_*`. */
  readonly etcd: BackendOperationHook;
  readonly memcached: BackendOperationHook;

  constructor(source: GatewayMetricsSource, options: { defaultMetrics?: boolean; version?: string } = {}) {
    const registers = [this.registry];
    registerBuildInfo(this.registry, 'gateway', options.version ?? '0.0.0');
    this.connectRequests = new Counter({
      name: 'msg_connect_requests_total',
      help: 'POST /connect requests by result (an error code, or "ok")',
      labelNames: ['result'],
      registers,
    });
    this.connectLatency = new Histogram({
      name: 'msg_connect_latency_seconds',
      help: 'Time to answer POST /connect',
      labelNames: ['result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.allocations = new Counter({
      name: 'msg_allocations_total',
      help: 'Sessions assigned to each node by this gateway',
      labelNames: ['node_id'],
      registers,
    });
    this.sessionStoreErrors = new Counter({
      name: 'msg_session_store_errors_total',
      help: 'Session store operations that failed or timed out',
      registers,
    });
    this.connectLimitFallbacks = new Counter({
      name: 'msg_connect_limit_fallbacks_total',
      help: 'Per-IP /connect limit decisions taken by this gateway alone because the shared count in memcached failed or was late',
      registers,
    });
    this.leaseState = new Gauge({
      name: 'msg_lease_state',
      help: '1 while this gateway\'s registry lease is held, 0 before it registered or after it was lost',
      registers,
    });
    this.etcd = backendOperationMetrics(this.registry, 'etcd');
    this.memcached = backendOperationMetrics(this.registry, 'memcached');
    new Gauge({
      name: 'msg_nodes',
      help: 'Nodes in this gateway\'s view of the registry, by state',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = source.nodeCounts();
        this.set({ state: 'active' }, counts.active);
        this.set({ state: 'draining' }, counts.draining);
      },
    });
    new Gauge({
      name: 'msg_registry_synced',
      help: '1 while the registry watch is live and caught up',
      registers,
      collect() {
        this.set(source.registrySynced() ? 1 : 0);
      },
    });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }
}

