import type { FrameErrorCode, ErrorCode } from './codes.js';
import type { NodeId } from './ids.js';

/** JSON value as it travels in `content`. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface ConnectRequest {
  userId: string;
  /** Node ids the client just failed to reach; the gateway avoids them when it can. */
  avoid?: string[];
  /** v1.2: place the user on this room's node (rendezvous hashing over the active nodes). */
  room?: string;
}

export interface Session {
  userId: string;
  listeningAddress: string;
  listeningKey: string;
  acked: boolean;
  nodeId: string;
}

/** The body of a 200 from `POST /connect`. */
export interface ConnectResponse extends Session {
  /** (Added, optional) STUN/TURN servers for the user's calls, when the gateway is configured with them. */
  iceServers?: IceServer[];
}

/**
 * One entry of `RTCConfiguration.iceServers`. TURN entries carry time-limited credentials in the TURN REST scheme
 * (coturn's `use-auth-secret`): `username` is `<expiry unix seconds>:<userId>`, `credential` is
 * base64(HMAC-SHA1(secret, username)).
 */
export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

// Client → node
export interface MessageFrame {
  type?: 'message';
  to: string;
  content: JsonValue;
  id?: string;
  from?: string;
}
export interface PingFrame {
  type: 'ping';
  id?: string;
}
/** v1.2: "I have every message up to `seq`" (only on a connection opened with `receipts=1`). */
export interface ReceiptFrame {
  type: 'receipt';
  seq: number;
}
/** v1.2: join room R; answered by `joined` (with the same id) or an `error`. */
export interface JoinFrame {
  type: 'join';
  room: string;
  id?: string;
}
/** v1.2: leave room R; answered by `ack` (also when not a member). */
export interface LeaveFrame {
  type: 'leave';
  room: string;
  id?: string;
}
/** v1.2: a message to every other member of `room`. A frame has `to` or `room`, never both. */
export interface RoomMessageFrame {
  type?: 'message';
  room: string;
  content: JsonValue;
  id?: string;
  from?: string;
}
export type ClientFrame = MessageFrame | RoomMessageFrame | PingFrame | ReceiptFrame | JoinFrame | LeaveFrame;

/** True for a room message (it has `room`; the schema guarantees it then has no `to`). */
export function isRoomMessageFrame(frame: ClientFrame): frame is RoomMessageFrame {
  return (frame.type === undefined || frame.type === 'message') && 'room' in frame;
}

// Node → client
export interface WelcomeFrame {
  type: 'welcome';
  userId: string;
  nodeId: string;
}
export interface DeliveredMessageFrame {
  type: 'message';
  from: string;
  to: string;
  content: JsonValue;
  id?: string;
  /** v1.2: on a connection with receipts on, 1, 2, 3… per connection; the client confirms it with a receipt. */
  seq?: number;
}
export interface AckFrame {
  type: 'ack';
  id: string;
}
export interface ErrorFrame {
  type: 'error';
  code: FrameErrorCode;
  message: string;
  id?: string;
  /**
   * One error for a whole burst (RATE_LIMITED): every id it answers, `id` first. Each of them gets no other answer.
   * Absent when the error answers one message or none.
   */
  ids?: string[];
}
export interface PongFrame {
  type: 'pong';
  id?: string;
}
/**
 * v1.2: the members of `room` after a join, in join order, the joiner included. With `id` it answers that `join`;
 * without, it is a resync after a resume (clarifications).
 */
export interface JoinedFrame {
  type: 'joined';
  room: string;
  members: string[];
  id?: string;
}
/** v1.2: a change of `room`'s members, to every other member (and to a removed member itself, `left`). */
export interface MemberFrame {
  type: 'member';
  room: string;
  userId: string;
  event: 'joined' | 'left';
}
/** v1.2: a room message as delivered; `id` is the sender's. */
export interface DeliveredRoomMessageFrame {
  type: 'message';
  from: string;
  room: string;
  content: JsonValue;
  id?: string;
  seq?: number;
}
export type ServerFrame =
  | WelcomeFrame
  | DeliveredMessageFrame
  | DeliveredRoomMessageFrame
  | JoinedFrame
  | MemberFrame
  | AckFrame
  | ErrorFrame
  | PongFrame;

/** A session as stored in memcached (`<prefix>session:<userId>`). */
export interface SessionRecord extends Session {
  createdAt: string;
  /**
   * v1.1: set by the node whose connection of this user ended without the user's own clean close. The user is
   * moving: messages to it are held until its next welcome, for at most the resume window from `movedAt`.
   */
  moving?: true;
  /** ISO time the user started moving (the writer's clock). */
  movedAt?: string;
  /**
   * v1.2: the `rooms` claim of the user's /connect token (written by the gateway; absent: every room is granted).
   * Carried with the session so whichever node the user lands on enforces it (FORBIDDEN_ROOM).
   */
  roomGrants?: string[];
  /**
   * v1.2: the rooms the user is a member of (kept by its node), so TOO_MANY_ROOMS and the member's rooms survive
   * its moves; the rooms' own records (`<prefix>room:<R>`) are the authority on membership.
   */
  rooms?: string[];
  /**
   * The node the user's previous session was on, when a /connect replaced it with one on another node (written by
   * the gateway). For a minute after the move, what that node hands on for the user (messages it held while the user
   * was there) is accepted from it by the user's new node: see the sender check in docs/security.md.
   */
  movedFrom?: string;
}

/** `<prefix>nodes/<nodeId>` in etcd. */
export interface NodeRecord {
  nodeId: NodeId;
  listeningAddress: string;
  internalAddress: string;
  state: 'active' | 'draining';
  startedAt: string;
  version: string;
  /**
   * The node's X25519 public key for this process (base64 SPKI DER), from which each peer derives the key of their
   * pair that MACs the requests between them (docs/decisions.md, "Inside the cluster"). Absent on nodes older than issue 28: their deliveries are refused by nodes
   * that have a cluster secret.
   */
  identityKey?: string;
}

/** `<prefix>load/<nodeId>` in etcd. */
export interface LoadRecord {
  connections: number;
  pending: number;
  updatedAt: string;
  /** The node's MSG_MAX_CONNECTIONS (absent: no limit). Gateways skip a node whose connections reached it. */
  maxConnections?: number;
}

/** `<prefix>gateways/<gatewayId>` in etcd. */
export interface GatewayRecord {
  gatewayId: string;
  address: string;
  startedAt: string;
  version: string;
}
