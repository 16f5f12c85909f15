import { readFileSync } from 'node:fs';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { backendOperationMetrics, registerBuildInfo } from '@messaging-server/core';

/** This package's version; the workspaces are released together, so it is the build's. */
const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface NodeMetricsSources {
  connections(): number;
  pending(): number;
  /** Messages held for users moving between nodes (v1.1). */
  held(): number;
  /** v1.2: messages written to connections with receipts on and not confirmed yet. */
  unconfirmed(): number;
}

/** One prom-client Registry per node, so several nodes in one process (tests, standalone) never clash. */
export function createNodeMetrics(sources: NodeMetricsSources, nodeId: string, version = PACKAGE_VERSION) {
  const registry = new Registry();
  // snake_case label names throughout (Prometheus convention), gateways included.
  registry.setDefaultLabels({ node_id: nodeId });
  registerBuildInfo(registry, 'node', version);
  collectDefaultMetrics({ register: registry });
  // Per-message counts are plain numbers on the hot path, folded into their counters when scraped
  // (a labelled inc() hashes its labels on every call).
  const hot = { relayedLocal: 0, relayedRemote: 0, acks: 0, receipts: 0 };
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
    continuity: continuityMetrics(registry, sources),
    receipts: receiptMetrics(registry, sources, hot),
    etcd: backendOperationMetrics(registry, 'etcd'),
    memcached: backendOperationMetrics(registry, 'memcached'),
  };
}

/** v1.1: what users moving between nodes cost and got. */
function continuityMetrics(registry: Registry, sources: NodeMetricsSources) {
  return {
    held: new Gauge({
      name: 'msg_held_messages',
      help: 'Messages held for users moving between nodes (their connection ended without their own clean close)',
      registers: [registry],
      collect() {
        this.set(sources.held());
      },
    }),
    resumed: new Counter({
      name: 'msg_resumed_messages_total',
      help: 'Held messages released to their user once it was back on a node',
      registers: [registry],
    }),
    expired: new Counter({
      name: 'msg_expired_after_move_total',
      help: 'Held messages answered EXPIRED because their user did not come back within the resume window',
      registers: [registry],
    }),
    redelivered: new Counter({
      name: 'msg_redelivered_messages_total',
      help: 'Messages held again because a node-to-node request failed with their fate unknown; once their user is back they go again, and receivers drop repeats',
      registers: [registry],
    }),
  };
}

/**
 * v1.2 receipts: what connections with receipts on leave unconfirmed, and the receipts they send. Their 4006 closes
 * are msg_connections_closed_total{reason="receipts_stalled"}.
 */
function receiptMetrics(registry: Registry, sources: NodeMetricsSources, hot: { receipts: number }) {
  return {
    unconfirmed: new Gauge({
      name: 'msg_unconfirmed_messages',
      help: 'Messages written to connections with receipts on and not confirmed by their client yet',
      registers: [registry],
      collect() {
        this.set(sources.unconfirmed());
      },
    }),
    received: new Counter({
      name: 'msg_receipts_total',
      help: 'receipt frames received from connections with receipts on',
      registers: [registry],
      collect() {
        if (hot.receipts > 0) this.inc(hot.receipts);
        hot.receipts = 0;
      },
    }),
  };
}

export type NodeMetrics = ReturnType<typeof createNodeMetrics>;
