import type { FrameErrorCode, JsonValue, NodeId } from '@messaging-server/protocol';

/**
 * Where a message's outcome (ack or error) goes: a connection on this node, or a sender connection on another
 * node, reached by POSTing to `replyTo` + OUTCOMES_PATH. `cid` names one connection, so an outcome never reaches
 * a later connection of the same user that did not send the message.
 */
export type Origin = { kind: 'local'; cid: string } | { kind: 'remote'; replyTo: string; cid: string };

/** A message on its way, with its sender already stamped. */
export interface Envelope {
  from: string;
  to: string;
  content: JsonValue;
  id?: string;
  origin: Origin;
  /** Approximate wire size in bytes (the client frame's length), to bound node-to-node batches. */
  size: number;
  /** Routing order on the sender's node, so a message routed again goes back in its place. */
  seq?: number;
  /** Sent to a location trusted from the cache: a PEER_UNAVAILABLE answer routes it once more after a fresh lookup. */
  viaCache?: boolean;
  rerouted?: boolean;
  /** Held for a moving recipient (v1.1): answered EXPIRED at this time (ms) if the recipient is still away. */
  holdUntil?: number;
  /**
   * v1.2, on the recipient's node: forwarded, and answered `pending` + `unconfirmed`, so its sender's node keeps it
   * until the outcome report (which says `kept`).
   */
  kept?: boolean;
  /** Bytes it holds in the node's HeldBudget while it waits in a hold. */
  heldCost?: number | undefined;
}

export type Outcome = 'delivered' | FrameErrorCode;

/**
 * Where a recipient is. `self.acked`: the session was already acked (false when it came from the cache during a
 * store outage). `moving` (v1.1): its connection ended without its own clean close; `movedAt` in ms.
 */
export type Location =
  | { kind: 'self'; acked: boolean }
  | { kind: 'remote'; nodeId: NodeId }
  | { kind: 'moving'; movedAt: number }
  | { kind: 'none' }
  | { kind: 'unknown' };

/**
 * What the node answers for a recipient whose session is here: delivered, held until it connects, moving, or (v1.2)
 * written to a connection with receipts on and answered once confirmed.
 */
export type LocalOutcome = Outcome | 'pending' | 'moving' | 'unconfirmed';

/** Puts a message routed again back before the messages routed after it (lists kept in routing order). */
export function insertInOrder(list: Envelope[], envelope: Envelope): void {
  const seq = envelope.seq ?? Number.POSITIVE_INFINITY;
  let i = list.length;
  while (i > 0 && ((list[i - 1] as Envelope).seq ?? 0) > seq) i -= 1;
  list.splice(i, 0, envelope);
}
