import { isBackendError, type Logger, type PeerTransport } from '@messaging-server/core';
import type { NodeId } from '@messaging-server/protocol';
import { Batcher } from '../batcher.js';
import type { Envelope } from '../envelope.js';
import {
  DELIVER_PATH,
  parseDeliverResponse,
  type DeliverRequest,
  type DeliverResult,
  type ForwardedMessage,
  type OutcomeReport,
} from './internal-wire.js';
import type { NodeMetrics } from '../metrics.js';
import type { OutcomeLinks } from './outcome-links.js';
import type { ForwardAnswers, PeerDelivery } from './ports.js';

/**
 * Requests in flight at once to one peer node. The transport must hold as many connections per peer, or the lanes
 * would queue behind each other on one socket: createPeerTransport (peer-transport.ts) makes it so.
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

export interface PeerLinksDeps {
  nodeId: NodeId;
  /** This node's internal address, where recipient nodes report outcomes of held messages. */
  replyTo: string;
  transport: PeerTransport;
  log: Logger;
  metrics: Pick<NodeMetrics, 'hot' | 'relayLatency'>;
  /** Where outcome reports go out (made before the router: see OutcomeLinks). */
  outcomes: OutcomeLinks;
}

/**
 * The node's side of the node-to-node mesh: PEER_LANES Batchers per peer, each with one delivery request in flight;
 * a recipient always uses the same lane, so its messages stay in order while other lanes run alongside. Outcomes of
 * messages held here go back to their sender nodes on links of their own (OutcomeLinks).
 */
export class PeerLinks implements PeerDelivery {
  /** PEER_LANES lanes per peer node, made on first use. */
  private readonly lanes = new Map<NodeId, (Batcher<Envelope> | undefined)[]>();

  constructor(
    private readonly deps: PeerLinksDeps,
    private readonly answers: ForwardAnswers,
  ) {}

  forward(peerId: NodeId, envelope: Envelope): void {
    if (!this.lane(peerId, envelope.to).push(envelope)) this.answers.refused(envelope);
  }

  report(replyTo: string, report: OutcomeReport): void {
    this.deps.outcomes.report(replyTo, report);
  }

  get idle(): boolean {
    for (const lanes of this.lanes.values()) if (lanes.some((lane) => lane?.idle === false)) return false;
    return this.deps.outcomes.idle;
  }

  /**
   * A peer left: its idle lanes go, and so does the outcome link to its address. Links that were still busy when
   * their peer left finish their work first; every departure also sweeps those that have gone idle since, so none
   * outlives the next one. Dropping an idle link is always safe: nothing waits on it, and one is made again on demand.
   */
  forget(peerId: NodeId, address: string, addressReleased = false): void {
    if (addressReleased) this.deps.transport.forget(address);
    for (const [lanePeer, lanes] of this.lanes) {
      if (lanePeer !== peerId && this.answers.addressOf(lanePeer) !== undefined) continue;
      const busy = lanes.map((lane) => (lane?.idle === false ? lane : undefined));
      if (busy.every((lane) => lane === undefined)) this.lanes.delete(lanePeer);
      else this.lanes.set(lanePeer, busy);
    }
    this.deps.outcomes.forget(address, (other) => this.answers.isMemberAddress(other));
  }

  /** Lanes and outcome links held open (for tests). */
  get linkCount(): number {
    let lanes = 0;
    for (const each of this.lanes.values()) lanes += each.filter((lane) => lane !== undefined).length;
    return lanes + this.deps.outcomes.count;
  }

  /** Hard stop: drops everything queued (the connections it was for are closing). */
  stop(): void {
    for (const lanes of this.lanes.values()) for (const lane of lanes) lane?.takeAll();
    this.deps.outcomes.stop();
  }

  private lane(peerId: NodeId, recipient: string): Batcher<Envelope> {
    let lanes = this.lanes.get(peerId);
    if (!lanes) {
      lanes = Array.from({ length: PEER_LANES }, () => undefined);
      this.lanes.set(peerId, lanes);
    }
    const index = laneOf(recipient);
    let link = lanes[index];
    if (!link) {
      link = new Batcher<Envelope>(
        (batch) => this.post(peerId, batch),
        (items) => this.answers.unanswered(peerId, items),
        MAX_BATCH_MESSAGES,
        (envelope) => envelope.size + LANE_ITEM_OVERHEAD_BYTES,
        MAX_BATCH_BYTES,
        MAX_LANE_QUEUE_BYTES,
      );
      lanes[index] = link;
    }
    return link;
  }

  /** One delivery request; settles every message in it. False when the peer failed (the rest of its queue fails too). */
  private async post(peerId: NodeId, batch: Envelope[]): Promise<boolean> {
    const { metrics, log } = this.deps;
    const address = this.answers.addressOf(peerId);
    if (!address) {
      this.answers.gone(batch);
      return true;
    }
    const started = process.hrtime.bigint();
    let results: DeliverResult[] | undefined;
    try {
      const answer = await this.deps.transport.post(address, DELIVER_PATH, this.request(batch), { timeoutMs: FORWARD_TIMEOUT_MS });
      results = parseDeliverResponse(answer, batch.length);
      if (!results) log.warn({ peerId, count: batch.length }, 'peer answered a malformed delivery response');
    } catch (error) {
      const code = isBackendError(error) ? error.code : undefined;
      log.warn({ peerId, count: batch.length, code, err: error }, 'relay to peer failed');
    }
    metrics.relayLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    if (!results) {
      this.answers.unanswered(peerId, batch);
      return false;
    }
    batch.forEach((envelope, i) => {
      const result = results[i] as DeliverResult;
      if (result.status === 'delivered' || result.status === 'pending') metrics.hot.relayedRemote += 1;
      this.answers.answered(peerId, envelope, result);
    });
    return true;
  }

  private request(batch: Envelope[]): DeliverRequest {
    return {
      fromNode: this.deps.nodeId,
      replyTo: this.deps.replyTo,
      budgetMs: FORWARD_TIMEOUT_MS - FORWARD_DEADLINE_MARGIN_MS,
      messages: batch.map((e) => {
        const m: ForwardedMessage = { from: e.from, to: e.to, content: e.content, cid: e.origin.cid };
        if (e.id !== undefined) m.id = e.id;
        return m;
      }),
    };
  }
}

/** FNV-1a: a cheap, stable spread of recipients over the lanes. */
function laneOf(recipient: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < recipient.length; i++) hash = Math.imul(hash ^ recipient.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % PEER_LANES;
}
