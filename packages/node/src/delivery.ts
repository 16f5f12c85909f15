import type { ClientSession } from './client-session.js';
import type { ConnectionTable } from './connection-table.js';
import type { Departures } from './departures.js';
import type { Envelope, LocalOutcome, Outcome } from './envelope.js';
import { ERROR_TEXT } from './frame-errors.js';
import { heldCostOf, type HeldBudget } from './held-budget.js';
import type { OutcomeReport } from './peer/index.js';
import type { PendingQueues } from './pending-queues.js';

/** Sends an outcome to the sender's node (OutcomeLinks.report, batched per node). */
export type ReportOutcome = (replyTo: string, report: OutcomeReport) => void;
/** Reports a message's final outcome to its sender, here or on its node. */
export type Settle = (envelope: Envelope, outcome: Outcome) => void;

/**
 * A message with an id gets exactly one ack or error frame carrying it; one without an id gets no ack, but a
 * failure still gets an error frame (without id), so nothing fails silently. Needs only the connection table and the
 * outcome links, so the pending queue (whose expiries settle) and the router can both be made after it.
 */
export function createSettle(table: Pick<ConnectionTable, 'byCid'>, report: ReportOutcome): Settle {
  return (envelope, outcome) => {
    if (envelope.id === undefined && outcome === 'delivered') return;
    const origin = envelope.origin;
    if (origin.kind === 'remote') {
      const remote: OutcomeReport = { userId: envelope.from, cid: origin.cid, result: outcome };
      if (envelope.id !== undefined) remote.id = envelope.id;
      if (envelope.kept === true) remote.kept = true;
      return report(origin.replyTo, remote);
    }
    const sender = table.byCid(origin.cid);
    if (sender && envelope.id !== undefined) sender.unsettled -= 1;
    if (!sender || !sender.isOpen) return;
    if (outcome === 'delivered') sender.sendAck(envelope.id as string);
    else sender.sendError(outcome, ERROR_TEXT[outcome], envelope.id);
  };
}

export interface DeliveryDeps {
  table: ConnectionTable;
  pending: PendingQueues;
  /** Users moving away from this node (v1.1); undefined with a resume window of 0. */
  departures: Departures | undefined;
  /** True once the node was closed hard: nothing is held any more. */
  closed(): boolean;
  /** Counts a message handed to a connection of this node. */
  countLocal(): void;
  settle: Settle;
  report: ReportOutcome;
  /** The node's byte caps on held messages; v1.2's unconfirmed messages count in them. */
  budget: HeldBudget;
}

/**
 * The last hop of every message on this node: handing it to a recipient's connection here or holding it in the
 * pending queue, and settling what those connections confirm or leave behind. Forwarded messages reach it through
 * the peer module's LocalDelivery port (peer/forwarded.ts).
 */
export class Delivery {
  constructor(private readonly deps: DeliveryDeps) {}

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
      written.onSafe?.();
      if (!written.envelope) continue;
      this.deps.budget.release(written.envelope.from, written.envelope.to, written.cost);
      this.deps.settle(written.envelope, 'delivered');
    }
  }

  /**
   * v1.2: a connection with receipts on ended. What it left unconfirmed is delivered again after the user's next
   * welcome when the user is moving (or was replaced by a newer session): by the sender's node for a copy it kept
   * (so a crash of this node loses nothing), held here otherwise: those are returned, for the router's hold. After a
   * clean or terminal close, PEER_UNAVAILABLE.
   */
  connectionLeft(session: ClientSession, fate: 'redeliver' | 'written' | 'gone'): Envelope[] {
    const toHold: Envelope[] = [];
    for (const written of session.receipts?.takeAll() ?? []) {
      // A room message still here: its member left the room (a clean or terminal close), so nothing waits for it.
      written.onSafe?.();
      const envelope = written.envelope;
      if (!envelope) continue;
      this.deps.budget.release(envelope.from, envelope.to, written.cost);
      if (fate !== 'redeliver') this.deps.settle(envelope, fate === 'written' ? 'delivered' : 'PEER_UNAVAILABLE');
      else if (envelope.kept === true && envelope.origin.kind === 'remote') this.reportRedeliver(envelope, envelope.origin);
      else toHold.push(envelope);
    }
    return toHold;
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
      if (outcome !== 'unconfirmed') this.deps.settle(envelope, outcome === 'moving' ? 'PEER_UNAVAILABLE' : outcome);
    }
  }
}
