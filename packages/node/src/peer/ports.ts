import type { FrameErrorCode, NodeId } from '@messaging-server/protocol';
import type { Envelope, LocalOutcome, Location } from '../envelope.js';
import type { DeliverResult, OutcomeReport } from './internal-wire.js';

/**
 * The peer module's two faces. The router sends through `PeerDelivery` and hears back through `ForwardAnswers`,
 * which it hands over when it makes its PeerDelivery (so neither needs the other late). The internal port serves
 * other nodes' requests through `PeerRoutes`, which reaches this node only through `LocalDelivery`.
 */

/** What the router asks of the node-to-node side: forwarding, outcome reports, and the peers' comings and goings. */
export interface PeerDelivery {
  /** Sends a message to the node holding its recipient; the answer comes back once, through ForwardAnswers. */
  forward(peerId: NodeId, envelope: Envelope): void;
  /** The outcome of a message held here, to its sender's node (batched per node; dropped after stop()). */
  report(replyTo: string, report: OutcomeReport): void;
  /** True when nothing is queued or in flight, forwards and reports alike. */
  readonly idle: boolean;
  /**
   * A peer left the registry: its idle links go (busy ones once idle, at the next departure), and with
   * `addressReleased` (no other node has that address) the transport's connections to it.
   */
  forget(peerId: NodeId, address: string, addressReleased: boolean): void;
  /** Hard stop: drops everything queued (the connections it was for are closing). */
  stop(): void;
}

/** How a forwarded message's fate reaches the router: exactly one of these per message forwarded. */
export interface ForwardAnswers {
  /** The peer's internal address from the membership view; undefined once it left. */
  addressOf(peerId: NodeId): string | undefined;
  /** Whether a registered node has this internal address (outcome links are kept only for those). */
  isMemberAddress(address: string): boolean;
  /** The peer's answer for one message. */
  answered(peerId: NodeId, envelope: Envelope, result: DeliverResult): void;
  /** The peer did not answer (unreachable, timed out, malformed answer): these messages' outcome is unknown. */
  unanswered(peerId: NodeId, envelopes: Envelope[]): void;
  /** The peer left the registry before the messages could go. */
  gone(envelopes: Envelope[]): void;
  /** The lane to the peer is full (a slow peer): the message cannot wait for it. */
  refused(envelope: Envelope): void;
}

/** A sender's connection here, as an outcome report from another node reaches it. */
export interface OutcomeSender {
  readonly userId: string;
  readonly isOpen: boolean;
  /** Messages sent and not yet answered (see session limits). */
  unsettled: number;
  sendAck(id: string): void;
  sendError(code: FrameErrorCode, message: string, id?: string): void;
}

/** What serving other nodes' requests needs of this node: its connections, its pending queue, its lookups. */
export interface LocalDelivery {
  /** True when the user has a connection here. */
  connected(userId: string): boolean;
  /** True when the user has a connection or held messages here: its session is here, no lookup needed. */
  here(userId: string): boolean;
  /** One session lookup (the router's, with its cache for store outages). */
  locate(userId: string): Promise<Location>;
  /** For a session on this node: delivers here, holds it in the pending queue, or tells it is moving. */
  deliverOrHold(envelope: Envelope, acked: boolean): LocalOutcome;
  /** Users seen leaving this node (v1.1); undefined with a resume window of 0. */
  departures: { has(userId: string): boolean; movedAt(userId: string): number | undefined } | undefined;
  /** Whether `userId`'s session is on `nodeId` (see SenderCheck). */
  senderOn(userId: string, nodeId: NodeId): Promise<boolean>;
  /** Whether the recipient `userId` moved here from `nodeId` within the last minute (see SenderCheck.movedFrom). */
  recipientMovedFrom(userId: string, nodeId: NodeId): Promise<boolean>;
  /** The registered internal address of a node, as this node's registry view knows it. */
  peerAddress(nodeId: NodeId): string | undefined;
  /** v1.2: applies an outcome report for a copy the router kept; false when the report is not for one. */
  keptOutcome(report: OutcomeReport): boolean;
  /** The sender connection with this connection id, if it is still here. */
  senderOf(cid: string): OutcomeSender | undefined;
}

/** An answer to another node's request: JSON with a status, or an error code of the contract's table. */
export type PeerAnswer = { status: number; body: unknown } | { error: 'INVALID_REQUEST' | 'FORBIDDEN_SENDER'; message: string };
