import type { LoadRecord, NodeRecord } from '@messaging-server/protocol';
import { MembershipView, type MembershipHandlers, type RegistryEvent } from '@messaging-server/core';

export interface NodeViewOptions {
  /** How long an assignment counts as load when no load update arrives for its node (the client never connected). */
  recentWindowMs?: number;
  /**
   * A load update received this long after an assignment is assumed to include it (the client has had time to
   * open its connection); younger assignments keep counting on top of the reported load.
   */
  loadGraceMs?: number;
  now?: () => number;
  random?: () => number;
  /** Passed through from the membership view: the gateway drops its pool to a released address. */
  nodeLeft?: MembershipHandlers['nodeLeft'];
}

/**
 * Allocation over this gateway's MembershipView: the nodes and loads from the registry watch, plus the sessions it
 * handed out itself since, so a burst of /connect spreads before any node reports its load. The view is kept as it
 * is while the watch is not synced: the gateway allocates from its last view during an etcd outage.
 */
export class NodeView {
  /** Assignment times per node, oldest first. */
  private readonly recent = new Map<string, number[]>();
  private readonly membership: MembershipView;
  private readonly recentWindowMs: number;
  private readonly loadGraceMs: number;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(options: NodeViewOptions = {}) {
    this.recentWindowMs = options.recentWindowMs ?? 2000;
    this.loadGraceMs = options.loadGraceMs ?? 250;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.membership = new MembershipView({
      nodeLeft: (nodeId, record, addressReleased) => {
        this.recent.delete(nodeId);
        options.nodeLeft?.(nodeId, record, addressReleased);
      },
      loadUpdated: (nodeId) => this.settle(nodeId),
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
  }

  /** Nodes in state `active`. */
  activeNodes(): NodeRecord[] {
    return this.membership.activeNodes();
  }

  countByState(): { active: number; draining: number } {
    return this.membership.countByState();
  }

  /** Reported connections plus this gateway's assignments that the report cannot include yet. */
  loadOf(nodeId: string): number {
    return (this.loads.get(nodeId)?.connections ?? 0) + this.recentCount(nodeId);
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

  private settle(nodeId: string): void {
    const times = this.recent.get(nodeId);
    if (!times) return;
    const horizon = this.now() - this.loadGraceMs;
    while (times.length > 0 && (times[0] ?? 0) <= horizon) times.shift();
  }
}
