/** What the load generator keeps while it runs: allocations per gateway and node, and message latencies over time. */
import { performance } from 'node:perf_hooks';
import { percentiles, type Percentiles } from '../stats.js';

/** Per gateway (by index): for each node, when this gateway first answered /connect with it (epoch ms), and how often. */
export interface AllocationFigures {
  byGateway: Record<string, { first: number; count: number }>[];
}

export class AllocationLog {
  private readonly byGateway: Map<string, { first: number; count: number }>[] = [];

  record(gateway: number, nodeId: string, at: number): void {
    while (this.byGateway.length <= gateway) this.byGateway.push(new Map());
    const nodes = this.byGateway[gateway] as Map<string, { first: number; count: number }>;
    const entry = nodes.get(nodeId);
    if (entry) entry.count += 1;
    else nodes.set(nodeId, { first: at, count: 1 });
  }

  figures(): AllocationFigures {
    return { byGateway: this.byGateway.map((nodes) => Object.fromEntries(nodes)) };
  }
}

export interface LatencyBucket extends Percentiles {
  /** Start of the bucket, seconds since traffic started. */
  at: number;
}

export interface LatencyFigures {
  /** Sends in the phase, plus those still unanswered when it started (`carriedIn`). */
  sent: number;
  received: number;
  acked: number;
  /**
   * Sends unanswered when the phase started. Their acks count in the phase, while their messages may have arrived
   * before it: acks can exceed receipts by at most this many without anything lost.
   */
  carriedIn: number;
  errors: Record<string, number>;
  /** Sends not made because the sender was between connections. */
  skipped: number;
  /** Messages between two nodes (by the nodes both sides were on when it was sent), and within one node. */
  crossNode: Percentiles;
  sameNode: Percentiles;
  /** Cross-node latency per bucket of receive time. */
  buckets: LatencyBucket[];
  /** A drained client: node's close → welcome on another node (includes the random delay and any retries). */
  reconnectMs: Percentiles;
  /** A churned-in user: /connect → welcome. */
  churnConnectMs: Percentiles;
  /** Cross-node latency during the warm-up, before startPhase() (not in any figure above). */
  warmupCrossNode: Percentiles;
}

export class LatencyLog {
  private counts = { sent: 0, received: 0, acked: 0, skipped: 0, errored: 0 };
  private carriedIn = 0;
  private readonly errors = new Map<string, number>();
  private cross: number[] = [];
  private same: number[] = [];
  private readonly buckets = new Map<number, number[]>();
  private reconnects: number[] = [];
  private churnConnects: number[] = [];
  private warmup: number[] = [];

  constructor(
    private readonly bucketMs: number,
    private startedAt: number,
  ) {}

  /** Ends the warm-up: what arrived so far is kept apart, counts and buckets start again from `at`. */
  startPhase(at: number): void {
    this.warmup = this.cross;
    this.cross = [];
    this.same = [];
    this.reconnects = [];
    this.churnConnects = [];
    this.buckets.clear();
    this.errors.clear();
    // Sends still in flight keep counting as sent: their answers arrive in the phase.
    const inFlight = this.unanswered();
    this.counts = { sent: inFlight, received: 0, acked: 0, skipped: 0, errored: 0 };
    this.carriedIn = inFlight;
    this.startedAt = at;
  }

  private nextId = 0;

  /** Counts a send; returns its message id (unique over the whole run, warm-up included). */
  sent(): number {
    this.counts.sent += 1;
    return (this.nextId += 1);
  }

  received(sentAt: number, crossNode: boolean): void {
    const ms = performance.now() - sentAt;
    this.counts.received += 1;
    if (!crossNode) return void this.same.push(ms);
    this.cross.push(ms);
    const bucket = Math.floor((Date.now() - this.startedAt) / this.bucketMs);
    const list = this.buckets.get(bucket);
    if (list) list.push(ms);
    else this.buckets.set(bucket, [ms]);
  }

  acked(): void {
    this.counts.acked += 1;
  }

  errored(code: string): void {
    this.counts.errored += 1;
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  skipped(): void {
    this.counts.skipped += 1;
  }

  reconnected(ms: number): void {
    this.reconnects.push(ms);
  }

  connected(ms: number): void {
    this.churnConnects.push(ms);
  }

  /** Sends still without an ack or an error. */
  unanswered(): number {
    return this.counts.sent - this.counts.acked - this.counts.errored;
  }

  figures(): LatencyFigures {
    const { sent, received, acked, skipped } = this.counts;
    return {
      sent,
      received,
      acked,
      carriedIn: this.carriedIn,
      errors: Object.fromEntries(this.errors),
      skipped,
      crossNode: percentiles(this.cross),
      sameNode: percentiles(this.same),
      buckets: [...this.buckets.entries()]
        .sort(([a], [b]) => a - b)
        .map(([bucket, list]) => ({ at: (bucket * this.bucketMs) / 1000, ...percentiles(list) })),
      reconnectMs: percentiles(this.reconnects),
      churnConnectMs: percentiles(this.churnConnects),
      warmupCrossNode: percentiles(this.warmup),
    };
  }
}
