import { isBackendError, MembershipView, type Logger, type PeerTransport, type RegistryEvent, type SessionStore } from '@messaging-server/core';
import type { FrameErrorCode, NodeRecord } from '@messaging-server/protocol';
import { Batcher } from './batcher.js';
import type { Envelope, Outcome } from './envelope.js';
import {
  DELIVER_PATH,
  OUTCOMES_PATH,
  parseDeliverResponse,
  type DeliverRequest,
  type DeliverResult,
  type ForwardedMessage,
  type OutcomeReport,
} from './internal-wire.js';
import type { NodeMetrics } from './metrics.js';

/** `self.acked`: the session was already acked (false when it came from the cache during a store outage). */
export type Location =
  | { kind: 'self'; acked: boolean }
  | { kind: 'remote'; nodeId: string }
  | { kind: 'none' }
  | { kind: 'unknown' };

export interface RouterDeps {
  nodeId: string;
  /** This node's internal address, where recipient nodes report outcomes of held messages. */
  replyTo: string;
  sessions: SessionStore;
  transport: PeerTransport;
  log: Logger;
  metrics: Pick<NodeMetrics, 'hot' | 'relayLatency'>;
  /** Hands the message to the recipient's connection on this node; undefined when it has none here. */
  deliverIfConnected(envelope: Envelope): Outcome | undefined;
  /** For a session on this node: delivers here, or holds it in this node's pending queue. */
  deliverOrHold(envelope: Envelope, acked: boolean): Outcome | 'pending';
  /** Reports the final outcome to the sender. */
  settle(envelope: Envelope, outcome: Outcome): void;
}

/**
 * Requests in flight at once to one peer node. The transport must hold as many connections per peer
 * (UndiciPeerTransport `connections`), or the lanes would queue behind each other on one socket.
 */
export const PEER_LANES = 4;
const FORWARD_TIMEOUT_MS = 1500;
/** The recipient node refuses a request this long before the sender's timeout, leaving time for the answer. */
const FORWARD_DEADLINE_MARGIN_MS = 250;
const MAX_BATCH_MESSAGES = 500;
const MAX_BATCH_BYTES = 1 << 20;
/** What may wait on one lane behind its request in flight; beyond it, RELAY_FAILED at once (the peer is too slow). */
const MAX_LANE_QUEUE_BYTES = 16 << 20;
/** Counted per queued message besides its size, so a flood of tiny ones is bounded too. */
const LANE_ITEM_OVERHEAD_BYTES = 256;
const LOCATION_CACHE_MAX = 100_000;
const LOCATION_CACHE_TTL_MS = 10 * 60_000;
/**
 * A remote location looked up this recently is used without asking the store again (one lookup per recipient
 * per second under load instead of one per outbox drain). A user who moved meanwhile makes the old node answer
 * PEER_UNAVAILABLE; such a message is routed once more after a fresh lookup, in its place.
 */
const LOCATION_TRUST_MS = 1000;
/** How long a message waits for a node that a session names but this node's registry view does not know yet. */
const UNKNOWN_NODE_WAIT_MS = 1000;

/**
 * Where messages go: the recipient's connection here, this node's pending queue, or another node.
 *
 * Order per (sender, recipient): messages to one recipient pass through one outbox while its location is looked up
 * (one lookup at a time, later messages wait behind it), and every message to that recipient's node takes the same
 * one of PEER_LANES Batchers, each with one request in flight. The cluster membership comes from the registry watch
 * and outlives an etcd outage (last known view); a node it does not know yet is waited for briefly. Recipient locations are cached: a remote one is
 * trusted for LOCATION_TRUST_MS, and any is used while the session store cannot answer.
 */
export class Router {
  private readonly membership: MembershipView;
  private readonly outboxes = new Map<string, Envelope[]>();
  private readonly peerLinks = new Map<string, Batcher<Envelope>>();
  private readonly outcomeLinks = new Map<string, Batcher<OutcomeReport>>();
  private readonly locations = new Map<string, { nodeId: string; at: number }>();
  private readonly awaitingNode = new Map<string, { envelopes: Envelope[]; timer: NodeJS.Timeout }>();
  private stopped = false;
  private seq = 0;

  constructor(private readonly deps: RouterDeps) {
    this.membership = new MembershipView({
      nodeUpdated: (nodeId) => this.nodeArrived(nodeId),
      nodeLeft: (nodeId, record, addressReleased) => this.forgetPeer(nodeId, record, addressReleased),
      syncChanged: (synced) => deps.log.info({ synced }, 'registry watch status'),
    });
  }

  /** The nodes this router knows, itself included. */
  get members(): ReadonlyMap<string, NodeRecord> {
    return this.membership.nodes;
  }

  /** Routes one message from a sender connected here. */
  route(envelope: Envelope): void {
    envelope.seq ??= ++this.seq;
    const box = this.outboxes.get(envelope.to);
    if (box) {
      insertInOrder(box, envelope);
      return;
    }
    const outcome = this.deps.deliverIfConnected(envelope);
    if (outcome !== undefined) {
      this.deps.settle(envelope, outcome);
      return;
    }
    const trusted = envelope.rerouted === true ? undefined : this.trustedRemote(envelope.to);
    if (trusted !== undefined) {
      envelope.viaCache = true;
      this.sendVia(trusted, envelope);
      return;
    }
    const queue = [envelope];
    this.outboxes.set(envelope.to, queue);
    void this.pump(envelope.to, queue);
  }

  /** One session lookup; during a store outage, the recently known location (if any) stands in. */
  async locate(userId: string): Promise<Location> {
    try {
      const record = await this.deps.sessions.get(userId);
      if (!record) return this.lastKnownRemote(userId) ?? this.forget(userId);
      this.remember(userId, record.nodeId);
      return this.locationOf(record.nodeId, record.acked);
    } catch (error) {
      const known = this.locations.get(userId);
      if (known && Date.now() - known.at < LOCATION_CACHE_TTL_MS) return this.locationOf(known.nodeId, false);
      this.deps.log.warn({ userId, err: error }, 'recipient lookup failed');
      return { kind: 'unknown' };
    }
  }

  /** Sends the outcome of a message held here to the sender's node (batched per node). */
  report(replyTo: string, report: OutcomeReport): void {
    if (this.stopped) return;
    this.outcomeLink(replyTo).push(report);
  }

  onRegistryEvent(event: RegistryEvent): void {
    this.membership.apply(event);
  }

  /** True when nothing is being looked up or sent. */
  get idle(): boolean {
    if (this.outboxes.size > 0 || this.awaitingNode.size > 0) return false;
    for (const link of this.peerLinks.values()) if (!link.idle) return false;
    for (const link of this.outcomeLinks.values()) if (!link.idle) return false;
    return true;
  }

  /** Hard stop: drops everything queued (the connections it was for are closing). */
  stop(): void {
    this.stopped = true;
    for (const queue of this.outboxes.values()) queue.splice(0);
    for (const waiting of this.awaitingNode.values()) clearTimeout(waiting.timer);
    this.awaitingNode.clear();
    for (const link of this.peerLinks.values()) link.takeAll();
    for (const link of this.outcomeLinks.values()) link.takeAll();
  }

  /**
   * After memcached restarts empty, sessions are missing until their nodes re-assert them (≤ TTL/3). A recipient
   * recently seen on another live node is tried there meanwhile: that node delivers if the user is connected to it,
   * and answers PEER_UNAVAILABLE otherwise (which also drops the stale entry).
   */
  private lastKnownRemote(userId: string): Location | undefined {
    const known = this.locations.get(userId);
    if (!known || known.nodeId === this.deps.nodeId || !this.members.has(known.nodeId)) return undefined;
    if (Date.now() - known.at >= LOCATION_CACHE_TTL_MS) return undefined;
    return { kind: 'remote', nodeId: known.nodeId };
  }

  private trustedRemote(userId: string): string | undefined {
    const known = this.locations.get(userId);
    if (!known || known.nodeId === this.deps.nodeId || Date.now() - known.at > LOCATION_TRUST_MS) return undefined;
    return this.members.has(known.nodeId) ? known.nodeId : undefined;
  }

  private forget(userId: string): Location {
    this.locations.delete(userId);
    return { kind: 'none' };
  }

  private locationOf(nodeId: string, acked: boolean): Location {
    return nodeId === this.deps.nodeId ? { kind: 'self', acked } : { kind: 'remote', nodeId };
  }

  private remember(userId: string, nodeId: string): void {
    this.locations.delete(userId);
    this.locations.set(userId, { nodeId, at: Date.now() });
    if (this.locations.size > LOCATION_CACHE_MAX) {
      const oldest = this.locations.keys().next();
      if (!oldest.done) this.locations.delete(oldest.value);
    }
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

  private dispatch(envelope: Envelope, location: Location): void {
    const { settle } = this.deps;
    switch (location.kind) {
      case 'self': {
        const outcome = this.deps.deliverOrHold(envelope, location.acked);
        if (outcome !== 'pending') settle(envelope, outcome);
        return;
      }
      case 'remote':
        if (this.members.has(location.nodeId)) this.sendVia(location.nodeId, envelope);
        else this.awaitNode(location.nodeId, envelope);
        return;
      case 'none':
        settle(envelope, 'PEER_UNAVAILABLE');
        return;
      case 'unknown':
        settle(envelope, 'RELAY_FAILED');
        return;
    }
  }

  /**
   * A session names a node this view does not hold: it just registered (our watch lags the gateway's by a few ms)
   * or it left (crashed, drained). Messages wait for it, in order, up to UNKNOWN_NODE_WAIT_MS, then get
   * PEER_UNAVAILABLE. With the watch out of sync (etcd away) no news will come, so they fail at once.
   */
  private awaitNode(nodeId: string, envelope: Envelope): void {
    const waiting = this.awaitingNode.get(nodeId);
    if (waiting) {
      waiting.envelopes.push(envelope);
      return;
    }
    if (!this.membership.synced || this.stopped) {
      this.deps.settle(envelope, 'PEER_UNAVAILABLE');
      return;
    }
    const timer = setTimeout(() => {
      const gone = this.awaitingNode.get(nodeId);
      this.awaitingNode.delete(nodeId);
      for (const e of gone?.envelopes ?? []) this.deps.settle(e, 'PEER_UNAVAILABLE');
    }, UNKNOWN_NODE_WAIT_MS);
    timer.unref();
    this.awaitingNode.set(nodeId, { envelopes: [envelope], timer });
  }

  private nodeArrived(nodeId: string): void {
    const waiting = this.awaitingNode.get(nodeId);
    if (!waiting) return;
    clearTimeout(waiting.timer);
    this.awaitingNode.delete(nodeId);
    for (const envelope of waiting.envelopes) this.sendVia(nodeId, envelope);
  }

  /**
   * The link that carries messages for `recipient` to `peerId`: one of PEER_LANES per peer, each with one request in
   * flight. A recipient always uses the same lane, so its messages stay in order while other lanes run alongside.
   */
  private peerLink(peerId: string, recipient: string): Batcher<Envelope> {
    const key = `${peerId}#${String(laneOf(recipient))}`;
    let link = this.peerLinks.get(key);
    if (!link) {
      link = new Batcher<Envelope>(
        (batch) => this.forward(peerId, batch),
        (items) => {
          for (const envelope of items) this.deps.settle(envelope, 'RELAY_FAILED');
        },
        MAX_BATCH_MESSAGES,
        (envelope) => envelope.size + LANE_ITEM_OVERHEAD_BYTES,
        MAX_BATCH_BYTES,
        MAX_LANE_QUEUE_BYTES,
      );
      this.peerLinks.set(key, link);
    }
    return link;
  }

  /** Queues a message on its lane to `peerId`, or fails it at once when that lane is full. */
  private sendVia(peerId: string, envelope: Envelope): void {
    if (!this.peerLink(peerId, envelope.to).push(envelope)) this.deps.settle(envelope, 'RELAY_FAILED');
  }

  /** One delivery request; settles every message in it. False when the peer failed (the rest of its queue fails too). */
  private async forward(peerId: string, batch: Envelope[]): Promise<boolean> {
    const { settle, metrics, log } = this.deps;
    const address = this.members.get(peerId)?.internalAddress;
    if (!address) {
      for (const envelope of batch) settle(envelope, 'PEER_UNAVAILABLE');
      return true;
    }
    const body: DeliverRequest = {
      fromNode: this.deps.nodeId,
      replyTo: this.deps.replyTo,
      budgetMs: FORWARD_TIMEOUT_MS - FORWARD_DEADLINE_MARGIN_MS,
      messages: batch.map((e) => {
        const m: ForwardedMessage = { from: e.from, to: e.to, content: e.content, cid: e.origin.cid };
        if (e.id !== undefined) m.id = e.id;
        return m;
      }),
    };
    const started = process.hrtime.bigint();
    let results: DeliverResult[] | undefined;
    try {
      const answer = await this.deps.transport.post(address, DELIVER_PATH, body, { timeoutMs: FORWARD_TIMEOUT_MS });
      results = parseDeliverResponse(answer, batch.length);
      if (!results) log.warn({ peerId, count: batch.length }, 'peer answered a malformed delivery response');
    } catch (error) {
      const code = isBackendError(error) ? error.code : undefined;
      log.warn({ peerId, count: batch.length, code, err: error }, 'relay to peer failed');
    }
    metrics.relayLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    if (!results) {
      for (const envelope of batch) {
        this.locations.delete(envelope.to);
        settle(envelope, 'RELAY_FAILED');
      }
      return false;
    }
    batch.forEach((envelope, i) => {
      const result = results[i] as DeliverResult;
      if (result.status !== 'error') metrics.hot.relayedRemote += 1;
      if (result.status === 'delivered') settle(envelope, 'delivered');
      else if (result.status === 'error') this.fail(envelope, result.code);
      // 'pending': held on the recipient's node, which reports the outcome later (OUTCOMES_PATH).
    });
    return true;
  }

  private fail(envelope: Envelope, code: FrameErrorCode): void {
    if (code === 'PEER_UNAVAILABLE') this.locations.delete(envelope.to);
    if (code === 'PEER_UNAVAILABLE' && envelope.viaCache === true && envelope.rerouted !== true && !this.stopped) {
      envelope.rerouted = true;
      envelope.viaCache = false;
      this.route(envelope);
      return;
    }
    this.deps.settle(envelope, code);
  }

  private outcomeLink(address: string): Batcher<OutcomeReport> {
    let link = this.outcomeLinks.get(address);
    if (!link) {
      const log = this.deps.log;
      link = new Batcher<OutcomeReport>(
        async (batch) => {
          try {
            await this.deps.transport.post(address, OUTCOMES_PATH, { outcomes: batch }, { timeoutMs: FORWARD_TIMEOUT_MS });
            return true;
          } catch (error) {
            // The sender's node is gone or unreachable, and with it the connections these outcomes were for.
            log.warn({ peer: address, count: batch.length, err: error }, 'outcome report failed');
            return false;
          }
        },
        (items) => log.warn({ peer: address, count: items.length }, 'outcome reports dropped'),
        1000,
      );
      this.outcomeLinks.set(address, link);
    }
    return link;
  }

  private forgetPeer(peerId: string, record: NodeRecord, addressReleased: boolean): void {
    if (peerId === this.deps.nodeId) return;
    this.deps.log.info({ peerId }, 'peer left the registry');
    if (addressReleased) this.deps.transport.forget(record.internalAddress);
    for (const [key, link] of this.peerLinks) if (key.startsWith(`${peerId}#`) && link.idle) this.peerLinks.delete(key);
    // Outcome links exist only for registered nodes' addresses (the internal API checks replyTo), and go with them.
    if (this.outcomeLinks.get(record.internalAddress)?.idle === true) this.outcomeLinks.delete(record.internalAddress);
  }
}

/** FNV-1a: a cheap, stable spread of recipients over the lanes. */
function laneOf(recipient: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < recipient.length; i++) hash = Math.imul(hash ^ recipient.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % PEER_LANES;
}

/** Puts a message routed again back before the messages routed after it (the outbox is in routing order). */
function insertInOrder(box: Envelope[], envelope: Envelope): void {
  const seq = envelope.seq ?? Number.POSITIVE_INFINITY;
  let i = box.length;
  while (i > 0 && ((box[i - 1] as Envelope).seq ?? 0) > seq) i -= 1;
  box.splice(i, 0, envelope);
}
