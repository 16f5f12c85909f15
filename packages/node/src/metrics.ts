import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { backendOperationMetrics } from '@messaging-server/core';

export interface NodeMetricsSources {
  connections(): number;
  pending(): number;
}

/** One prom-client Registry per node, so several nodes in one process (tests, standalone) never clash. */
export function createNodeMetrics(sources: NodeMetricsSources, nodeId: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ node_id: nodeId });
  collectDefaultMetrics({ register: registry });
  // Per-message counts are plain numbers on the hot path, folded into their counters when scraped
  // (a labelled inc() hashes its labels on every call).
  const hot = { relayedLocal: 0, relayedRemote: 0, acks: 0 };
  const connections = new Gauge({
    name: 'msg_connections',
    help: 'Accepted SockJS connections on this node',
    registers: [registry],
    collect() {
      this.set(sources.connections());
    },
  });
  const pending = new Gauge({
    name: 'msg_pending_messages',
    help: 'Messages held in pending queues for not-yet-connected recipients',
    registers: [registry],
    collect() {
      this.set(sources.pending());
    },
  });
  return {
    registry,
    connections,
    pending,
    handshakes: new Counter({
      name: 'msg_handshakes_total',
      help: 'SockJS handshakes by result (accepted or the close reason)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    hot,
    closes: new Counter({
      name: 'msg_connections_closed_total',
      help: 'Connections the node closed, by the close reason of the contract',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    relayed: new Counter({
      name: 'msg_messages_relayed_total',
      help: 'Messages handed on, by path: local (same node) or remote (to another node)',
      labelNames: ['path'] as const,
      registers: [registry],
      collect() {
        if (hot.relayedLocal > 0) this.inc({ path: 'local' }, hot.relayedLocal);
        if (hot.relayedRemote > 0) this.inc({ path: 'remote' }, hot.relayedRemote);
        hot.relayedLocal = 0;
        hot.relayedRemote = 0;
      },
    }),
    acks: new Counter({
      name: 'msg_acks_total',
      help: 'ack frames sent to senders',
      registers: [registry],
      collect() {
        if (hot.acks > 0) this.inc(hot.acks);
        hot.acks = 0;
      },
    }),
    errors: new Counter({
      name: 'msg_message_errors_total',
      help: 'error frames sent to clients, by code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    relayLatency: new Histogram({
      name: 'msg_relay_latency_seconds',
      help: 'Round trip of one node-to-node delivery request',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2],
      registers: [registry],
    }),
    leaseState: new Gauge({ name: 'msg_lease_state', help: '1 while the registry lease is held, 0 when lost', registers: [registry] }),
    draining: new Gauge({ name: 'msg_draining', help: '1 while the node drains', registers: [registry] }),
    etcd: backendOperationMetrics(registry, 'etcd'),
    memcached: backendOperationMetrics(registry, 'memcached'),
  };
}


export type NodeMetrics = ReturnType<typeof createNodeMetrics>;
