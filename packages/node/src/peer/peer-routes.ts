import { MAX_CONTENT_DEPTH, nestedDeeperThan, type FrameErrorCode } from '@messaging-server/protocol';
import { applyOutcomes, deliverForwarded } from './forwarded.js';
import { isOverBudget, OUTCOMES_PATH, parseDeliverRequest, parseOutcomes, type DeliverRequest, type DeliverResult } from './internal-wire.js';
import type { LocalDelivery, PeerAnswer } from './ports.js';

/** Serves another node's delivery request (DELIVER_PATH) or outcome report (OUTCOMES_PATH); `signer` is the node that signed it, if signed. */
export type PeerRoutes = (path: string, body: unknown, signer: string | undefined, arrivedAt: number) => Promise<PeerAnswer>;

export function createPeerRoutes(local: LocalDelivery): PeerRoutes {
  return async (path, body, signer, arrivedAt) => {
    if (path === OUTCOMES_PATH) {
      const reports = parseOutcomes(body);
      if (!reports) return { error: 'INVALID_REQUEST', message: 'malformed outcome report' };
      return { status: 200, body: { accepted: applyOutcomes(local, reports) } };
    }
    const request = parseDeliverRequest(body);
    if (!request) return { error: 'INVALID_REQUEST', message: 'malformed delivery request' };
    // A node speaks only for itself, and (the sender check below) only for the users whose sessions it holds.
    if (signer !== undefined && request.fromNode !== signer) return { error: 'FORBIDDEN_SENDER', message: 'fromNode is not the node that signed the request' };
    // Outcomes go to replyTo: only ever to a registered node's own internal address.
    if (request.replyTo !== local.peerAddress(request.fromNode)) {
      return { error: 'FORBIDDEN_SENDER', message: 'replyTo is not the registered internal address of fromNode' };
    }
    if (isOverBudget(request, arrivedAt)) return { status: 200, body: { results: request.messages.map(() => ({ status: 'error', code: 'RELAY_FAILED' })) } };
    const refusals = await refusalsOf(request, local);
    // Checked again after every lookup: a silent store can take the rest of the budget after the check above.
    const spent = (): boolean => isOverBudget(request, arrivedAt);
    return { status: 200, body: { results: await deliverEach(local, request, refusals, spent) } };
  };
}

/**
 * Why single messages of a delivery request are refused, by index; the others are delivered. One message never fails
 * its batch: content nested past the limit (which a current sender refuses at its edge, but an older or broken peer
 * may still send) gets INVALID_MESSAGE; a sender whose session is not on the forwarding node (which, with a cluster
 * secret, is the node that signed the request) gets FORBIDDEN_SENDER, unless the recipient has just moved here from
 * that node (a drain handing on what it held for the recipient while it was there).
 */
async function refusalsOf(request: DeliverRequest, local: LocalDelivery): Promise<(FrameErrorCode | undefined)[]> {
  const unvouched = new Set<string>();
  const senders = [...new Set(request.messages.map((m) => m.from))];
  const verdicts = await Promise.all(senders.map((from) => local.senderOn(from, request.fromNode)));
  senders.forEach((from, i) => (verdicts[i] ? undefined : unvouched.add(from)));
  const handedOn = new Set<string>();
  const recipients = [...new Set(request.messages.filter((m) => unvouched.has(m.from)).map((m) => m.to))];
  const moved = await Promise.all(recipients.map((to) => local.recipientMovedFrom(to, request.fromNode)));
  recipients.forEach((to, i) => (moved[i] ? handedOn.add(to) : undefined));
  return request.messages.map((m) => {
    if (nestedDeeperThan(m.content, MAX_CONTENT_DEPTH)) return 'INVALID_MESSAGE';
    return unvouched.has(m.from) && !handedOn.has(m.to) ? 'FORBIDDEN_SENDER' : undefined;
  });
}

async function deliverEach(local: LocalDelivery, request: DeliverRequest, refusals: (FrameErrorCode | undefined)[], spent: () => boolean): Promise<DeliverResult[]> {
  if (refusals.every((code) => code === undefined)) return deliverForwarded(local, request, spent);
  const delivered = await deliverForwarded(local, { ...request, messages: request.messages.filter((_m, i) => refusals[i] === undefined) }, spent);
  let next = 0;
  return refusals.map((code): DeliverResult => (code === undefined ? (delivered[next++] as DeliverResult) : { status: 'error', code }));
}
