import type { Envelope, LocalOutcome, Location } from '../envelope.js';
import { ERROR_TEXT } from '../frame-errors.js';
import type { DeliverRequest, DeliverResult, ForwardedMessage, OutcomeReport } from './internal-wire.js';
import type { LocalDelivery } from './ports.js';

/**
 * Messages forwarded by another node; one result per message, in order. Once `spent()` (the sender's node has
 * stopped waiting and counted them failed), what is still undecided gets RELAY_FAILED instead of a late delivery.
 */
export async function deliverForwarded(local: LocalDelivery, request: DeliverRequest, spent: () => boolean = () => false): Promise<DeliverResult[]> {
  const results: DeliverResult[] = new Array<DeliverResult>(request.messages.length);
  const byRecipient = new Map<string, number[]>();
  request.messages.forEach((m, i) => {
    const list = byRecipient.get(m.to);
    if (list) list.push(i);
    else byRecipient.set(m.to, [i]);
  });
  await Promise.all(
    [...byRecipient].map(async ([to, indexes]) => {
      const location: Location = local.here(to) ? { kind: 'self', acked: false } : await local.locate(to);
      if (spent()) {
        for (const i of indexes) results[i] = { status: 'error', code: 'RELAY_FAILED' };
        return;
      }
      // Decided synchronously from here on, so a recipient connecting meanwhile gets them in order.
      for (const i of indexes) results[i] = deliverOne(local, request, request.messages[i] as ForwardedMessage, location);
    }),
  );
  // Connections flush their frames once per event-loop turn (FlushScheduler). Answering after that flush means a
  // node killed right after its answer has already written every message it reported delivered.
  await new Promise((resolve) => setImmediate(resolve));
  return results;
}

/** The outcomes of messages this node's senders sent to recipients held on other nodes. Returns how many applied. */
export function applyOutcomes(local: LocalDelivery, outcomes: OutcomeReport[]): number {
  let accepted = 0;
  for (const o of outcomes) {
    if (local.keptOutcome(o)) {
      accepted += 1;
      continue;
    }
    const sender = local.senderOf(o.cid);
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

function deliverOne(local: LocalDelivery, request: DeliverRequest, m: ForwardedMessage, location: Location): DeliverResult {
  const envelope: Envelope = {
    from: m.from,
    to: m.to,
    content: m.content,
    origin: { kind: 'remote', replyTo: request.replyTo, cid: m.cid },
    size: 0,
  };
  if (m.id !== undefined) envelope.id = m.id;
  const outcome = outcomeHere(local, envelope, location);
  if (outcome === 'moving') return movingResult(local, m.to, location);
  if (outcome === 'unconfirmed') {
    envelope.kept = true;
    return { status: 'pending', unconfirmed: true };
  }
  return outcome === 'delivered' || outcome === 'pending' ? { status: outcome } : { status: 'error', code: outcome };
}

/** Tells the sender's node since when the user is away, so its hold ends with the user's window, not later. */
function movingResult(local: LocalDelivery, userId: string, location: Location): DeliverResult {
  const movedAt = local.departures?.movedAt(userId) ?? (location.kind === 'moving' ? location.movedAt : undefined);
  return movedAt === undefined ? { status: 'moving' } : { status: 'moving', movedAgoMs: Math.max(0, Date.now() - movedAt) };
}

/**
 * A forwarded message's fate on this node. A recipient whose session is elsewhere or moving counts as moving
 * (v1.1): the sender's node holds it and finds the user where it went. With no resume window, v1's answers.
 */
function outcomeHere(local: LocalDelivery, envelope: Envelope, location: Location): LocalOutcome {
  if (location.kind === 'self') return local.deliverOrHold(envelope, location.acked);
  if (local.connected(envelope.to)) return local.deliverOrHold(envelope, false); // connected while we looked it up
  // Seen leaving here: moving, even when the store lost its mark (PEER_UNAVAILABLE is never a moving user's answer).
  if (local.departures?.has(envelope.to) === true) return 'moving';
  if (location.kind === 'unknown') return 'RELAY_FAILED';
  if (location.kind === 'none' || local.departures === undefined) return 'PEER_UNAVAILABLE';
  return 'moving';
}
