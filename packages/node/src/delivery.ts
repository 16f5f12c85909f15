import type { ClientSession } from './client-session.js';
import type { ConnectionTable } from './connection-table.js';
import type { Departures } from './departures.js';
import type { Envelope, Outcome } from './envelope.js';
import { ERROR_TEXT } from './frame-errors.js';
import { heldCostOf, type HeldBudget } from './held-budget.js';
import type { DeliverRequest, DeliverResult, ForwardedMessage, OutcomeReport } from './peer/internal-wire.js';
import type { PendingQueues } from './pending-queues.js';
import type { LocalOutcome, Location } from './router.js';

export interface DeliveryDeps {
  table: ConnectionTable;
  pending: PendingQueues;
  /** Users moving away from this node (v1.1); undefined with a resume window of 0. */
  departures: Departures | undefined;
  /** True once the node was closed hard: nothing is held any more. */
  closed(): boolean;
  /** Counts a message handed to a connection of this node. */
  countLocal(): void;
  /** Looks up where a recipient's session is. */
  locate(userId: string): Promise<Location>;
  /** Sends an outcome to the sender's node (batched). */
  report(replyTo: string, report: OutcomeReport): void;
  /** The node's byte caps on held messages; v1.2's unconfirmed messages count in them. */
  budget: HeldBudget;
  /** Holds a message for its moving recipient (the router's hold), delivered again after its next welcome. */
  hold(envelope: Envelope, movedAt: number | undefined): void;
  /** v1.2: applies an outcome report for a copy the router kept; false when the report is not for one. */
  keptOutcome(report: OutcomeReport): boolean;
  /** When the user started moving (ms), if it is. */
  movedAt(userId: string): number | undefined;
}

/**
 * The last hop of every message: handing it to a recipient's connection on this node or holding it in the pending
 * queue, and reporting each message's outcome to its sender, here or on its node. A message with an id gets exactly
 * one ack or error frame carrying it; one without an id gets no ack, but a failure still gets an error frame
 * (without id), so nothing fails silently.
 */
export class Delivery {
  constructor(private readonly deps: DeliveryDeps) {}

  settle(envelope: Envelope, outcome: Outcome): void {
    if (envelope.id === undefined && outcome === 'delivered') return;
    const origin = envelope.origin;
    if (origin.kind === 'remote') {
      const report: OutcomeReport = { userId: envelope.from, cid: origin.cid, result: outcome };
      if (envelope.id !== undefined) report.id = envelope.id;
      if (envelope.kept === true) report.kept = true;
      this.deps.report(origin.replyTo, report);
      return;
    }
    const sender = this.deps.table.byCid(origin.cid);
    if (sender && envelope.id !== undefined) sender.unsettled -= 1;
    if (!sender || !sender.isOpen) return;
    if (outcome === 'delivered') sender.sendAck(envelope.id as string);
    else sender.sendError(outcome, ERROR_TEXT[outcome], envelope.id);
  }

  /**
   * Hands a message to a connection here; returns its outcome. A connection that is already closing cannot take it:
   * its user left (v1, or a close frame from the client), or, closed by this node with a recoverable code, is moving.
   */
  deliverLocal(recipient: ClientSession, envelope: Envelope): 'delivered' | 'moving' | 'unconfirmed' | 'PEER_UNAVAILABLE' | 'QUEUE_FULL' {
    // v1.2: with receipts on, a message with an id is kept until confirmed, in the held budget like any held message.
    const tracked = recipient.receipts !== undefined && envelope.id !== undefined && recipient.isOpen;
    const cost = tracked ? heldCostOf(envelope) : 0;
    if (tracked && !this.deps.budget.reserve(envelope.from, envelope.to, cost)) return 'QUEUE_FULL';
    if (!recipient.writeMessage(envelope, cost)) {
      if (tracked) this.deps.budget.release(envelope.from, envelope.to, cost);
      return this.deps.departures && recipient.closedForMove ? 'moving' : 'PEER_UNAVAILABLE';
    }
    this.deps.countLocal();
    return tracked ? 'unconfirmed' : 'delivered';
  }

  /** v1.2: a receipt from `session` for everything up to `seq`: their senders get their acks now. */
  confirmed(session: ClientSession, seq: number): void {
    for (const written of session.receipts?.confirm(seq) ?? []) {
      if (!written.envelope) continue;
      this.deps.budget.release(written.envelope.from, written.envelope.to, written.cost);
      this.settle(written.envelope, 'delivered');
    }
  }

  /**
   * v1.2: a connection with receipts on ended. What it left unconfirmed is delivered again after the user's next
   * welcome when the user is moving (or was replaced by a newer session): by the sender's node for a copy it kept
   * (so a crash of this node loses nothing), held here otherwise. After a clean or terminal close, PEER_UNAVAILABLE.
   */
  connectionLeft(session: ClientSession, fate: 'redeliver' | 'written' | 'gone'): void {
    const movedAt = this.deps.movedAt(session.userId);
    for (const written of session.receipts?.takeAll() ?? []) {
      const envelope = written.envelope;
      if (!envelope) continue;
      this.deps.budget.release(envelope.from, envelope.to, written.cost);
      if (fate !== 'redeliver') this.settle(envelope, fate === 'written' ? 'delivered' : 'PEER_UNAVAILABLE');
      else if (envelope.kept === true && envelope.origin.kind === 'remote') this.reportRedeliver(envelope, envelope.origin);
      else this.deps.hold(envelope, movedAt);
    }
  }

  private reportRedeliver(envelope: Envelope, origin: { replyTo: string; cid: string }): void {
    const report: OutcomeReport = { userId: envelope.from, cid: origin.cid, result: 'RELAY_FAILED', kept: true, redeliver: true };
    if (envelope.id !== undefined) report.id = envelope.id;
    this.deps.report(origin.replyTo, report);
  }

  /** Hands the message to the recipient's connection if it has one here. */
  deliverIfConnected(envelope: Envelope): LocalOutcome | undefined {
    const recipient = this.deps.table.get(envelope.to);
    return recipient ? this.deliverLocal(recipient, envelope) : undefined;
  }

  /**
   * For a recipient whose session is on this node: delivers to its connection, or holds the message until it
   * connects. A session already acked with no connection here (and none opening) is stale: its connection is gone.
   */
  deliverOrHold(envelope: Envelope, acked: boolean): LocalOutcome {
    const { table, pending } = this.deps;
    const recipient = table.get(envelope.to);
    if (recipient) return this.deliverLocal(recipient, envelope);
    if (this.deps.closed()) return 'RELAY_FAILED';
    if (this.deps.departures?.has(envelope.to) === true) return 'moving';
    if (acked && !pending.has(envelope.to) && !table.isHandshaking(envelope.to)) return 'PEER_UNAVAILABLE';
    return pending.add(envelope) === 'held' ? 'pending' : 'QUEUE_FULL';
  }

  /** Right after a welcome: the messages held for this user, in order. */
  flushPending(session: ClientSession): void {
    this.deps.departures?.clear(session.userId);
    for (const envelope of this.deps.pending.take(session.userId)) {
      const outcome = this.deliverLocal(session, envelope);
      if (outcome !== 'unconfirmed') this.settle(envelope, outcome === 'moving' ? 'PEER_UNAVAILABLE' : outcome);
    }
  }

  /**
   * Messages forwarded by another node; one result per message, in order. Once `spent()` (the sender's node has
   * stopped waiting and counted them failed), what is still undecided gets RELAY_FAILED instead of a late delivery.
   */
  async deliverForwarded(request: DeliverRequest, spent: () => boolean = () => false): Promise<DeliverResult[]> {
    const results: DeliverResult[] = new Array<DeliverResult>(request.messages.length);
    const byRecipient = new Map<string, number[]>();
    request.messages.forEach((m, i) => {
      const list = byRecipient.get(m.to);
      if (list) list.push(i);
      else byRecipient.set(m.to, [i]);
    });
    await Promise.all(
      [...byRecipient].map(async ([to, indexes]) => {
        const { table, pending } = this.deps;
        const location: Location = table.has(to) || pending.has(to) ? { kind: 'self', acked: false } : await this.deps.locate(to);
        if (spent()) {
          for (const i of indexes) results[i] = { status: 'error', code: 'RELAY_FAILED' };
          return;
        }
        // Decided synchronously from here on, so a recipient connecting meanwhile gets them in order.
        for (const i of indexes) results[i] = this.deliverOne(request, request.messages[i] as ForwardedMessage, location);
      }),
    );
    // Connections flush their frames once per event-loop turn (FlushScheduler). Answering after that flush means a
    // node killed right after its answer has already written every message it reported delivered.
    await new Promise((resolve) => setImmediate(resolve));
    return results;
  }

  /** The outcomes of messages this node's senders sent to recipients held on other nodes. Returns how many applied. */
  applyOutcomes(outcomes: OutcomeReport[]): number {
    let accepted = 0;
    for (const o of outcomes) {
      if (this.deps.keptOutcome(o)) {
        accepted += 1;
        continue;
      }
      const sender = this.deps.table.byCid(o.cid);
      if (!sender || sender.userId !== o.userId) continue;
      // Answered `pending` by the recipient's node, the message was counted unsettled until this report.
      if (o.id !== undefined) sender.unsettled = Math.max(0, sender.unsettled - 1);
      if (!sender.isOpen) continue;
      accepted += 1;
      if (o.result !== 'delivered') sender.sendError(o.result, ERROR_TEXT[o.result], o.id);
      else if (o.id !== undefined) sender.sendAck(o.id);
    }
    return accepted;
  }

  private deliverOne(request: DeliverRequest, m: ForwardedMessage, location: Location): DeliverResult {
    const envelope: Envelope = {
      from: m.from,
      to: m.to,
      content: m.content,
      origin: { kind: 'remote', replyTo: request.replyTo, cid: m.cid },
      size: 0,
    };
    if (m.id !== undefined) envelope.id = m.id;
    const outcome = this.outcomeHere(envelope, location);
    if (outcome === 'moving') return this.movingResult(m.to, location);
    if (outcome === 'unconfirmed') {
      envelope.kept = true;
      return { status: 'pending', unconfirmed: true };
    }
    return outcome === 'delivered' || outcome === 'pending' ? { status: outcome } : { status: 'error', code: outcome };
  }

  /** Tells the sender's node since when the user is away, so its hold ends with the user's window, not later. */
  private movingResult(userId: string, location: Location): DeliverResult {
    const movedAt = this.deps.departures?.movedAt(userId) ?? (location.kind === 'moving' ? location.movedAt : undefined);
    return movedAt === undefined ? { status: 'moving' } : { status: 'moving', movedAgoMs: Math.max(0, Date.now() - movedAt) };
  }

  /**
   * A forwarded message's fate on this node. A recipient whose session is elsewhere or moving counts as moving
   * (v1.1): the sender's node holds it and finds the user where it went. With no resume window, v1's answers.
   */
  private outcomeHere(envelope: Envelope, location: Location): LocalOutcome {
    if (location.kind === 'self') return this.deliverOrHold(envelope, location.acked);
    if (this.deps.table.has(envelope.to)) return this.deliverOrHold(envelope, false); // connected while we looked it up
    // Seen leaving here: moving, even when the store lost its mark (PEER_UNAVAILABLE is never a moving user's answer).
    if (this.deps.departures?.has(envelope.to) === true) return 'moving';
    if (location.kind === 'unknown') return 'RELAY_FAILED';
    if (location.kind === 'none' || this.deps.departures === undefined) return 'PEER_UNAVAILABLE';
    return 'moving';
  }
}
