import type { LoadRecord, NodeRecord } from '@messaging-server/protocol';
import { MembershipView, rendezvousOrder, type MembershipHandlers, type RegistryEvent } from '@messaging-server/core';

export interface NodeViewOptions {
  /**
   * How long one of this gateway's assignments counts as load at most, when the node's reports never show it
   * arriving (the client never connected). Long enough for a slow handshake on a loaded cluster: forgetting an
   * assignment before the node counts it sends the next ones to the same node.
   */
  recentWindowMs?: number;
  now?: () => number;
  random?: () => number;
  /** Passed through from the membership view: the gateway drops its pool to a released address. */
  nodeLeft?: MembershipHandlers['nodeLeft'];
}

/**
 * Allocation over this gateway's MembershipView: the nodes and loads from the registry watch, plus the sessions
 * handed out since that the nodes' reports do not show yet, so a burst of /connect spreads before any node reports
 * its load. The view is kept as it is while the watch is not synced: the gateway allocates from its last view during
 * an etcd outage.
 *
 * In-flight sessions: each gateway knows only its own assignments, and the other gateways' are invisible until the
 * node reports them (about a second later). Behind a load balancer that spreads /connect evenly, every gateway hands
 * out about as many as this one, so an assignment counts as many times as there are gateways in the registry. It
 * stops counting when the node's reported connections rise by its share of the rise (a rise of k covers k/gateways
 * of this gateway's oldest assignments there), or after `recentWindowMs`. Counting on a fixed grace time instead
 * forgets assignments whose handshake is slower than that grace, and a loaded cluster then piles the next sessions
 * onto the node that looks empty (seen in the scale run, docs/scale.md).
 */
export class NodeView {
  /** This gateway's assignments per node that the node's reports do not include yet, oldest first. */
  private readonly recent = new Map<string, number[]>();
  /** Per node: the connections of its last report, and the part of an assignment the rises since have covered. */
  private readonly reported = new Map<string, { connections: number; covered: number }>();
  private readonly gateways = new Set<string>();
  private readonly membership: MembershipView;
  private readonly recentWindowMs: number;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(options: NodeViewOptions = {}) {
    this.recentWindowMs = options.recentWindowMs ?? 5000;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.membership = new MembershipView({
      nodeLeft: (nodeId, record, addressReleased) => {
        this.recent.delete(nodeId);
        this.reported.delete(nodeId);
        options.nodeLeft?.(nodeId, record, addressReleased);
      },
      loadUpdated: (nodeId, load) => this.settle(nodeId, load.connections),
    });
  }

  get nodes(): ReadonlyMap<string, NodeRecord> {
    return this.membership.nodes;
  }

  get loads(): ReadonlyMap<string, LoadRecord> {
    return this.membership.loads;
  }

  apply(event: RegistryEvent): void {
    this.membership.apply(event);
    if (event.type === 'snapshot') {
      // A resynchronised view starts its comparisons from the snapshot's loads.
      this.reported.clear();
      for (const [id, load] of this.loads) this.reported.set(id, { connections: load.connections, covered: 0 });
      this.gateways.clear();
      for (const entry of event.entries) if (entry.kind === 'gateway') this.gateways.add(entry.id);
    } else if (event.type === 'put' && event.entry.kind === 'gateway') this.gateways.add(event.entry.id);
    else if (event.type === 'delete' && event.kind === 'gateway') this.gateways.delete(event.id);
  }

  /** Nodes in state `active`. */
  activeNodes(): NodeRecord[] {
    return this.membership.activeNodes();
  }

  countByState(): { active: number; draining: number } {
    return this.membership.countByState();
  }

  /** Reported connections plus the sessions in flight to it: this gateway's, counted once per gateway. */
  loadOf(nodeId: string): number {
    return (this.loads.get(nodeId)?.connections ?? 0) + this.recentCount(nodeId) * this.gatewayCount();
  }

  /** Gateways in the registry (this one included once registered); at least 1. */
  gatewayCount(): number {
    return Math.max(1, this.gateways.size);
  }

  /**
   * Picks the least-loaded active node that is not full, skipping `avoid` when another one exists; ties at random. Records
   * the assignment at once (so concurrent requests see it). Undefined when no node is active.
   */
  allocate(avoid: readonly string[] = []): NodeRecord | undefined {
    const active = this.activeNodes().filter((node) => !this.isFull(node.nodeId));
    const preferred = avoid.length === 0 ? active : active.filter((node) => !avoid.includes(node.nodeId));
    const candidates = preferred.length > 0 ? preferred : active;
    let best: NodeRecord[] = [];
    let bestLoad = Number.POSITIVE_INFINITY;
    for (const node of candidates) {
      const load = this.loadOf(node.nodeId);
      if (load < bestLoad) {
        bestLoad = load;
        best = [node];
      } else if (load === bestLoad) best.push(node);
    }
    const chosen = best[Math.floor(this.random() * best.length)] ?? best[0];
    if (chosen) this.recordAssignment(chosen.nodeId);
    return chosen;
  }

  /**
   * v1.2 placement: the first node in `room`'s rendezvous order over the active nodes that is not full and not in
   * `avoid` (avoided nodes only when nothing else is left). Every gateway computes the same from the registry alone.
   */
  allocateForRoom(room: string, avoid: readonly string[] = []): NodeRecord | undefined {
    const open = new Map<string, NodeRecord>(this.activeNodes().filter((node) => !this.isFull(node.nodeId)).map((node) => [node.nodeId, node]));
    const order = rendezvousOrder(room, [...open.keys()]);
    const chosenId = order.find((id) => !avoid.includes(id)) ?? order[0];
    const chosen = chosenId === undefined ? undefined : open.get(chosenId);
    if (chosen) this.recordAssignment(chosen.nodeId);
    return chosen;
  }

  /** The node reported a connection limit and its load (with this gateway's recent assignments) reached it. */
  isFull(nodeId: string): boolean {
    const max = this.loads.get(nodeId)?.maxConnections;
    return max !== undefined && max > 0 && this.loadOf(nodeId) >= max;
  }

  /** Undoes one assignment whose session could not be stored. */
  release(nodeId: string): void {
    const times = this.recent.get(nodeId);
    if (times && times.length > 0) times.pop();
  }

  private recordAssignment(nodeId: string): void {
    const times = this.recent.get(nodeId);
    if (times) times.push(this.now());
    else this.recent.set(nodeId, [this.now()]);
  }

  private recentCount(nodeId: string): number {
    const times = this.recent.get(nodeId);
    if (!times) return 0;
    const horizon = this.now() - this.recentWindowMs;
    while (times.length > 0 && (times[0] ?? 0) <= horizon) times.shift();
    return times.length;
  }

  /** A report's rise in connections covers its share of this gateway's oldest assignments to that node. */
  private settle(nodeId: string, connections: number): void {
    const last = this.reported.get(nodeId) ?? { connections: 0, covered: 0 };
    const rise = connections - last.connections;
    last.connections = connections;
    this.reported.set(nodeId, last);
    const times = this.recent.get(nodeId);
    if (!times || times.length === 0) {
      last.covered = 0;
      return;
    }
    if (rise <= 0) return;
    last.covered += rise / this.gatewayCount();
    while (last.covered >= 1 && times.length > 0) {
      times.shift();
      last.covered -= 1;
    }
    if (times.length === 0) last.covered = 0;
  }
}
