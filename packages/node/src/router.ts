import { MembershipView, type Logger, type RegistryEvent, type SessionStore } from '@messaging-server/core';
import { asNodeId, type FrameErrorCode, type NodeId, type NodeRecord } from '@messaging-server/protocol';
import { insertInOrder, type Envelope, type LocalOutcome, type Location, type Outcome } from './envelope.js';
import type { DeliverResult, ForwardAnswers, OutcomeReport, PeerDelivery } from './peer/index.js';
import type { HeldBudget } from './held-budget.js';
import { KeptCopies } from './kept-copies.js';
import { LocationCache } from './location-cache.js';
import type { NodeMetrics } from './metrics.js';
import { movedAtOf, MovingHolds, type Whereabouts } from './moving-holds.js';
import { NodeWaits } from './node-waits.js';

export interface RouterDeps {
  nodeId: NodeId;
  sessions: SessionStore;
  /** Makes the node-to-node side (peer/), which answers each forward through the router's ForwardAnswers. */
  peer(answers: ForwardAnswers): PeerDelivery;
  log: Logger;
  metrics: Pick<NodeMetrics, 'continuity'>;
  /** v1.1's MSG_RESUME_WINDOW_MS; 0 restores v1 (nothing is held for users who move). */
  resumeWindowMs: number;
  /** Caps of messages held for moving users: a count per recipient, and the node's byte budget (beyond: QUEUE_FULL). */
  holdMaxPerRecipient: number;
  holdBudget: HeldBudget;
  /** Hands the message to the recipient's connection on this node; undefined when it has none here. */
  deliverIfConnected(envelope: Envelope): LocalOutcome | undefined;
  /** For a session on this node: delivers here, holds it in this node's pending queue, or tells it is moving. */
  deliverOrHold(envelope: Envelope, acked: boolean): LocalOutcome;
  /** True when the user is connected here, or opening its connection here. */
  isHereOrComing(userId: string): boolean;
  /** When a user whose connection here ended started moving (ms), if it is moving. */
  movedAt(userId: string): number | undefined;
  /** Reports the final outcome to the sender. */
  settle(envelope: Envelope, outcome: Outcome): void;
}

/** A peer that failed a delivery request is not sent to for this long; its recipients count as moving. */
const PEER_DOWN_MS = 2000;

/**
 * Where messages go: the recipient's connection here, this node's pending queue, another node, or (v1.1) a hold
 * until a moving recipient is back.
 *
 * Order per (sender, recipient): messages to one recipient pass through one outbox while its location is looked up
 * (later messages wait behind it), every message to that recipient's node takes the same delivery lane, and a
 * recipient with held messages gets later ones held behind them. Membership comes from the registry watch and
 * outlives an etcd outage (last known view); a node it does not know yet is waited for briefly.
 */
export class Router {
  private readonly membership: MembershipView;
  private readonly links: PeerDelivery;
  private readonly locations = new LocationCache();
  /** Undefined with a resume window of 0 (v1). */
  private readonly holds: MovingHolds | undefined;
  private readonly outboxes = new Map<string, Envelope[]>();
  private readonly awaitingNode = new NodeWaits((envelopes) => envelopes.forEach((e) => this.holdOr(e, 'PEER_UNAVAILABLE')));
  private readonly downUntil = new Map<NodeId, number>();
  /** Messages per recipient sent on a lane and not yet answered, and the node they went to (see sendTo). */
  private readonly unanswered = new Map<string, { count: number; nodeId: NodeId }>();
  /** v1.2: forwarded messages written to a connection with receipts on, until their recipient's node reports. */
  private readonly kept: KeptCopies;
  private stopped = false;
  private seq = 0;

  constructor(private readonly deps: RouterDeps) {
    this.kept = new KeptCopies(deps.holdBudget);
    this.membership = new MembershipView({
      nodeUpdated: (nodeId, _record, isNew) => this.nodeArrived(nodeId, isNew),
      nodeLeft: (nodeId, record, addressReleased) => this.forgetPeer(nodeId, record, addressReleased),
      syncChanged: (synced) => deps.log.info({ synced }, 'registry watch status'),
    });
    this.links = deps.peer({
      addressOf: (peerId) => this.members.get(peerId)?.internalAddress,
      isMemberAddress: (address) => this.membership.hasAddress(address),
      answered: (peerId, envelope, result) => this.answered(peerId, this.landed(envelope), result),
      unanswered: (peerId, envelopes) => this.noAnswer(peerId, envelopes.map((e) => this.landed(e))),
      gone: (envelopes) => envelopes.forEach((e) => this.holdOr(this.landed(e), 'PEER_UNAVAILABLE')),
      refused: (envelope) => deps.settle(this.landed(envelope), 'RELAY_FAILED'),
    });
    if (deps.resumeWindowMs > 0) {
      this.holds = new MovingHolds({
        windowMs: deps.resumeWindowMs,
        perRecipientMax: deps.holdMaxPerRecipient,
        budget: deps.holdBudget,
        whereNow: (userId) => this.whereNow(userId),
        inFlight: (userId) => this.unanswered.has(userId),
        release: (envelopes, where) => {
          deps.metrics.continuity.resumed.inc(envelopes.length);
          envelopes.forEach((e) => this.dispatch(e, where));
        },
        expire: (envelope) => this.expire(envelope),
      });
    }
  }

  /** The nodes this router knows, itself included. */
  get members(): ReadonlyMap<string, NodeRecord> {
    return this.membership.nodes;
  }

  /** Rises with every change of `members` (MembershipView.version). */
  get membersVersion(): number {
    return this.membership.version;
  }

  /** Messages held for moving users. */
  get held(): number {
    return this.holds?.size ?? 0;
  }

  /** True when nothing is being looked up or sent (messages held for moving users aside: they wait by design). */
  get settled(): boolean {
    return this.outboxes.size === 0 && this.awaitingNode.size === 0 && this.links.idle;
  }

  onRegistryEvent(event: RegistryEvent): void {
    this.membership.apply(event);
  }

  /** Routes one message from a sender connected here. */
  route(envelope: Envelope): void {
    envelope.seq ??= ++this.seq;
    const box = this.outboxes.get(envelope.to);
    if (box) {
      insertInOrder(box, envelope);
      return;
    }
    if (this.holds?.has(envelope.to)) {
      this.holdOr(envelope, 'PEER_UNAVAILABLE');
      return;
    }
    // A recipient that just came here while its earlier messages are still on their way to its old node.
    if (this.overtakes(envelope.to, this.deps.nodeId) && this.deps.isHereOrComing(envelope.to)) return this.holdOr(envelope, 'RELAY_FAILED');
    const outcome = this.deps.deliverIfConnected(envelope);
    if (outcome === 'moving') return this.holdOr(envelope, 'PEER_UNAVAILABLE', this.deps.movedAt(envelope.to));
    // Unconfirmed (v1.2): written, and answered once the recipient confirms it.
    if (outcome !== undefined && outcome !== 'pending') return outcome === 'unconfirmed' ? undefined : this.deps.settle(envelope, outcome);
    const trusted = envelope.rerouted === true ? undefined : this.trustedRemote(envelope.to);
    if (trusted !== undefined) {
      envelope.viaCache = true;
      this.sendTo(trusted, envelope);
      return;
    }
    const queue = [envelope];
    this.outboxes.set(envelope.to, queue);
    void this.pump(envelope.to, queue);
  }

  /**
   * Holds a message for a recipient who is moving (v1.1), or, with no resume window, settles it with the v1 answer.
   * Also the drain's way to keep what its pending queue held for users who will come back elsewhere.
   */
  holdOr(envelope: Envelope, v1Answer: FrameErrorCode, movedAt?: number): void {
    if (!this.holds || this.stopped) this.deps.settle(envelope, v1Answer);
    // After a drain's deadline nothing is held any more: the window ends here, as for what was held until then.
    else if (this.holds.stopped) this.deps.settle(envelope, 'EXPIRED');
    else if (!this.holds.hold(envelope, movedAt)) this.deps.settle(envelope, 'QUEUE_FULL');
  }

  /**
   * A drain closed every connection: held messages of its own senders have nobody to answer here, and those senders
   * send them again from their next node (unanswered sends go again with their ids), so they go now. Messages held
   * for senders on other nodes stay: their outcome still reaches them.
   */
  dropHeldOfLocalSenders(): number {
    const local = (envelope: Envelope): boolean => envelope.origin.kind === 'local';
    for (const envelope of this.kept.discard(local)) this.landed(envelope);
    return this.holds?.discard(local) ?? 0;
  }

  /** v1.2: an outcome report for a copy kept here (applied, or noted until its copy is kept); false for any other. */
  keptOutcome(report: OutcomeReport): boolean {
    if (report.kept !== true || report.id === undefined) return false;
    const envelope = this.kept.take(report.cid, report.id);
    if (envelope) this.applyKept(this.landed(envelope), report);
    else this.kept.noteEarly(report); // or before the delivery answer that makes it kept
    return true;
  }

  private keep(peerId: NodeId, envelope: Envelope): void {
    const early = this.kept.takeEarly(envelope);
    if (early) return this.applyKept(envelope, early);
    if (!this.kept.keep(peerId, envelope)) return this.deps.settle(envelope, 'QUEUE_FULL');
    this.countOnWay(peerId, envelope);
  }

  private applyKept(envelope: Envelope, report: OutcomeReport): void {
    if (report.redeliver === true) this.redeliver(envelope, 'PEER_UNAVAILABLE');
    else this.deps.settle(envelope, report.result);
  }

  /** The node these copies were written on failed or left: held, and delivered again after the user's next welcome. */
  private failKept(peerId: NodeId): void {
    for (const envelope of this.kept.takeFor(peerId)) this.redeliver(this.landed(envelope), 'RELAY_FAILED');
  }

  private redeliver(envelope: Envelope, v1Answer: FrameErrorCode): void {
    this.locations.forget(envelope.to);
    if (this.holds) this.deps.metrics.continuity.redelivered.inc();
    this.holdOr(envelope, v1Answer);
  }

  /** The end of a drain: whatever is still held gets EXPIRED (the node goes; the window would end elsewhere). */
  expireHeld(): void {
    for (const envelope of this.holds?.stop() ?? []) this.expire(envelope);
  }

  private expire(envelope: Envelope): void {
    this.deps.metrics.continuity.expired.inc();
    this.deps.settle(envelope, 'EXPIRED');
  }

  /** The user was welcomed here: what was held for it goes at once. */
  resumed(userId: string): void {
    this.holds?.resumeHere(userId);
  }

  /** One session lookup; during a store outage, the recently known location (if any) stands in. */
  async locate(userId: string): Promise<Location> {
    try {
      const record = await this.deps.sessions.get(userId);
      if (!record) return this.lastKnownRemote(userId) ?? this.forget(userId);
      // Where the session store's plain string becomes a NodeId.
      const nodeId = asNodeId(record.nodeId);
      this.locations.remember(userId, nodeId);
      if (record.moving === true && this.holds) return { kind: 'moving', movedAt: movedAtOf(record.movedAt) };
      return this.locationOf(nodeId, record.acked);
    } catch (error) {
      const known = this.locations.lastKnown(userId);
      if (known !== undefined) return this.locationOf(known, false);
      this.deps.log.warn({ userId, err: error }, 'recipient lookup failed');
      return { kind: 'unknown' };
    }
  }

  /** Hard stop: drops everything queued or held (the connections it was for are closing). */
  stop(): Envelope[] {
    this.stopped = true;
    for (const queue of this.outboxes.values()) queue.splice(0);
    this.awaitingNode.clear();
    this.links.stop();
    this.kept.clear();
    return this.holds?.stop() ?? [];
  }

  private async pump(to: string, queue: Envelope[]): Promise<void> {
    try {
      while (queue.length > 0 && !this.stopped) {
        const location = await this.locate(to);
        for (const envelope of queue.splice(0)) this.dispatch(envelope, location);
      }
    } catch (error) {
      this.deps.log.error({ userId: to, err: error }, 'routing failed');
      for (const envelope of queue.splice(0)) this.deps.settle(envelope, 'RELAY_FAILED');
    } finally {
      this.outboxes.delete(to);
    }
  }

  private dispatch(envelope: Envelope, location: Location | Whereabouts): void {
    if (this.holds?.has(envelope.to)) return this.holdOr(envelope, 'PEER_UNAVAILABLE');
    switch (location.kind) {
      case 'self': {
        if (this.overtakes(envelope.to, this.deps.nodeId)) return this.holdOr(envelope, 'RELAY_FAILED');
        const outcome = this.deps.deliverOrHold(envelope, location.acked);
        if (outcome === 'moving') this.holdOr(envelope, 'PEER_UNAVAILABLE', this.deps.movedAt(envelope.to));
        else if (outcome !== 'pending' && outcome !== 'unconfirmed') this.deps.settle(envelope, outcome);
        return;
      }
      case 'remote': {
        const nodeId = asNodeId(location.nodeId); // a Whereabouts (moving-holds.ts) carries a plain string
        if (this.isDown(nodeId)) this.holdOr(envelope, 'RELAY_FAILED');
        else if (this.members.has(nodeId)) this.sendTo(nodeId, envelope);
        else this.awaitNode(nodeId, envelope);
        return;
      }
      case 'moving':
        return this.holdOr(envelope, 'PEER_UNAVAILABLE', location.movedAt);
      case 'none': {
        // The store lost the moving mark (an outage or restart), but this node saw the user go: still moving.
        const movedAt = this.deps.movedAt(envelope.to);
        if (movedAt !== undefined) return this.holdOr(envelope, 'PEER_UNAVAILABLE', movedAt);
        return this.deps.settle(envelope, 'PEER_UNAVAILABLE');
      }
      case 'unknown':
        return this.holdOr(envelope, 'RELAY_FAILED');
    }
  }

  /**
   * Every message to a peer goes on its lane through here, and is counted until its lane hands it back. A recipient
   * whose earlier messages are still on their way to another node (it just moved) gets this one held (v1.1): sent
   * now, it could overtake them; held, it goes after them, in order, once they are answered.
   */
  private sendTo(peerId: NodeId, envelope: Envelope): void {
    if (this.overtakes(envelope.to, peerId)) return this.holdOr(envelope, 'RELAY_FAILED');
    this.countOnWay(peerId, envelope);
    this.links.forward(peerId, envelope);
  }

  /** Until its lane answers, or (v1.2, kept) its recipient's node reports (see overtakes). */
  private countOnWay(peerId: NodeId, envelope: Envelope): void {
    const entry = this.unanswered.get(envelope.to);
    if (entry) entry.count += 1;
    else this.unanswered.set(envelope.to, { count: 1, nodeId: peerId });
  }

  /** True when messages to `userId` are on their way to a node other than `nodeId` (and v1.1 can hold this one). */
  private overtakes(userId: string, nodeId: NodeId): boolean {
    const entry = this.unanswered.get(userId);
    return this.holds !== undefined && entry !== undefined && entry.nodeId !== nodeId;
  }

  private landed(envelope: Envelope): Envelope {
    const entry = this.unanswered.get(envelope.to);
    if (entry && entry.count > 1) entry.count -= 1;
    else this.unanswered.delete(envelope.to);
    return envelope;
  }

  /** A peer's answer for one message it was sent. */
  private answered(peerId: NodeId, envelope: Envelope, result: DeliverResult): void {
    switch (result.status) {
      case 'delivered':
        return this.deps.settle(envelope, 'delivered');
      case 'pending':
        // Held on the recipient's node, which reports the outcome later (OUTCOMES_PATH). Unconfirmed (v1.2): kept.
        return result.unconfirmed === true ? this.keep(peerId, envelope) : undefined;
      case 'moving':
        return this.holdOr(envelope, 'PEER_UNAVAILABLE', result.movedAgoMs === undefined ? undefined : Date.now() - result.movedAgoMs);
      case 'error':
        return this.fail(envelope, result.code);
    }
  }

  /**
   * A delivery request failed or timed out: the peer may have delivered some of these, or crashed with them. They
   * count as messages to moving users (v1.1: delivered again after the move; receivers drop repeats), and the peer
   * is not sent to for PEER_DOWN_MS, so a crashed node is recognised from its first failed forward.
   */
  private noAnswer(peerId: NodeId, envelopes: Envelope[]): void {
    if (this.holds) this.downUntil.set(peerId, Date.now() + PEER_DOWN_MS);
    this.failKept(peerId);
    for (const envelope of envelopes) {
      this.locations.forget(envelope.to);
      // The peer may have delivered it, and without an id no receiver can drop a repeat: at most once, so it fails.
      if (envelope.id === undefined) {
        this.deps.settle(envelope, 'RELAY_FAILED');
        continue;
      }
      if (this.holds) this.deps.metrics.continuity.redelivered.inc();
      this.holdOr(envelope, 'RELAY_FAILED');
    }
  }

  private fail(envelope: Envelope, code: FrameErrorCode): void {
    if (code === 'PEER_UNAVAILABLE') this.locations.forget(envelope.to);
    if (code === 'PEER_UNAVAILABLE' && envelope.viaCache === true && envelope.rerouted !== true && !this.stopped) {
      envelope.rerouted = true;
      envelope.viaCache = false;
      this.route(envelope);
      return;
    }
    // The recipient's node could not look it up (store outage) or read the request too late: try again after the wait.
    if (code === 'RELAY_FAILED') return this.holdOr(envelope, code);
    this.deps.settle(envelope, code);
  }

  /** For a held user: where it is now, once it came back to a live node; undefined while it is away. */
  private async whereNow(userId: string): Promise<Whereabouts | undefined> {
    const record = await this.deps.sessions.get(userId);
    if (!record || record.moving === true) return undefined;
    const nodeId = asNodeId(record.nodeId);
    this.locations.remember(userId, nodeId);
    if (nodeId === this.deps.nodeId) {
      // An acked session here whose connection is gone is this node's own stale record: the user is still away.
      return !record.acked || this.deps.isHereOrComing(userId) ? { kind: 'self', acked: record.acked } : undefined;
    }
    return this.members.has(nodeId) && !this.isDown(nodeId) ? { kind: 'remote', nodeId } : undefined;
  }

  private isDown(nodeId: NodeId): boolean {
    const until = this.downUntil.get(nodeId);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.downUntil.delete(nodeId);
    return false;
  }

  /**
   * After memcached restarts empty, sessions are missing until their nodes re-assert them (≤ TTL/3). A recipient
   * recently seen on another live node is tried there meanwhile: that node delivers if the user is connected to it,
   * and answers PEER_UNAVAILABLE otherwise (which also drops the stale entry).
   */
  private lastKnownRemote(userId: string): Location | undefined {
    const known = this.locations.lastKnown(userId);
    if (known === undefined || known === this.deps.nodeId || !this.members.has(known)) return undefined;
    return { kind: 'remote', nodeId: known };
  }

  private trustedRemote(userId: string): NodeId | undefined {
    const known = this.locations.trusted(userId);
    if (known === undefined || known === this.deps.nodeId || this.isDown(known)) return undefined;
    return this.members.has(known) ? known : undefined;
  }

  private forget(userId: string): Location {
    this.locations.forget(userId);
    return { kind: 'none' };
  }

  private locationOf(nodeId: NodeId, acked: boolean): Location {
    return nodeId === this.deps.nodeId ? { kind: 'self', acked } : { kind: 'remote', nodeId };
  }

  /** A node the view does not hold (see NodeWaits; v1: PEER_UNAVAILABLE). With the watch out of sync (etcd away) no news will come: at once. */
  private awaitNode(nodeId: NodeId, envelope: Envelope): void {
    if (this.awaitingNode.join(nodeId, envelope)) return;
    if (!this.membership.synced || this.stopped) return this.holdOr(envelope, 'PEER_UNAVAILABLE');
    this.awaitingNode.start(nodeId, envelope);
  }

  private nodeArrived(nodeId: NodeId, isNew: boolean): void {
    if (isNew) this.downUntil.delete(nodeId);
    for (const envelope of this.awaitingNode.take(nodeId)) this.sendTo(nodeId, envelope);
  }

  private forgetPeer(peerId: NodeId, record: NodeRecord, addressReleased: boolean): void {
    if (peerId === this.deps.nodeId) return;
    this.deps.log.info({ peerId }, 'peer left the registry');
    this.downUntil.delete(peerId);
    this.failKept(peerId);
    this.links.forget(peerId, record.internalAddress, addressReleased);
  }
}
