import type { JsonValue } from '@messaging-server/protocol';
import type { MessagingError } from './errors.js';
import type { ReconnectOptions, StopReason } from './policy.js';
import type { ClientLogger, Clock, SockJSConstructor, SockJSOptions } from './transport.js';

/** Everything `connect()` and `new MessagingClient()` take. All but `gatewayUrl` and `userId` are optional. */
export interface ConnectOptions extends Partial<ReconnectOptions> {
  /** Base URL of a gateway, e.g. `http://127.0.0.1:8080` (in a browser on the gateway's page: `location.origin`). */
  gatewayUrl: string;
  userId: string;
  /**
   * Placement hint (contract v1.2): users who connect with the same room name share a node while the cluster's
   * membership is stable, so their signaling never pays the hop between nodes. Any id both sides know (a call id).
   */
  room?: string;
  /** Bearer token for `/connect` when the gateway requires authentication. */
  token?: string;
  /** Called before every `/connect`, so a token can be refreshed between reconnects. Wins over `token`. */
  getToken?: () => string | Promise<string>;
  fetch?: typeof fetch;
  SockJS?: SockJSConstructor;
  sockjsOptions?: SockJSOptions;
  logger?: ClientLogger;
  /** Application-level ping period. Default 25 000 ms; 0 turns pings off. */
  pingIntervalMs?: number;
  /** A ping without a pong for this long marks the connection dead. Default 10 000 ms. */
  pingTimeoutMs?: number;
  /** Sends held while not connected. Default 1000. */
  maxQueue?: number;
  /** Per-send deadline, counted from the `send()` call (queue time included). Default 15 000 ms. */
  sendTimeoutMs?: number;
  /** How long `connect()` waits for the first welcome before it gives up. Default 30 000 ms; 0 waits forever. */
  connectTimeoutMs?: number;
  /** Deadline of one `/connect` request. Default 10 000 ms. */
  requestTimeoutMs?: number;
  /** Deadline from opening SockJS to the welcome frame. Default 10 000 ms. */
  handshakeTimeoutMs?: number;
  /** Frames larger than this are rejected locally with MESSAGE_TOO_LARGE. Default 65 536 (the node's default). */
  maxMessageBytes?: number;
  /**
   * Contract v1.1's at-least-once: sends still unanswered when the connection drops go again, with the same ids,
   * after the next welcome (default true). false: they reject with CONNECTION_LOST, as in v1.
   */
  resendUnanswered?: boolean;
  /**
   * Contract v1.2's receipts (default true): the node acks a message to its sender only once this client confirmed
   * it, and delivers again what a silently dead connection swallowed. false: a v1.1 connection.
   */
  receipts?: boolean;
  /** How long after a message the client confirms it (one receipt covers everything until then). 50–200, default 100 ms. */
  receiptDelayMs?: number;
  /** How many `(from, id)` pairs the client remembers to drop repeated messages. Default 4096. */
  repeatWindow?: number;
  clock?: Clock;
  /** Randomness for the reconnect delays' jitter only (tests pin it); message ids never use it. */
  random?: () => number;
}

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface IncomingMessage {
  from: string;
  to: string;
  content: JsonValue;
  id?: string;
}

/** Emitted after every welcome. */
export interface SessionInfo {
  userId: string;
  nodeId: string;
  listeningAddress: string;
}

export interface ClosedInfo {
  reason: StopReason;
  /** The SockJS close code or the `/connect` HTTP status that ended the client, if any. */
  code?: number;
  error?: MessagingError;
}

export interface ReconnectFailedInfo {
  /** Attempts made since the last welcome. */
  attempts: number;
  /** What failed last. */
  error: MessagingError;
}

export interface ClientEvents {
  message: IncomingMessage;
  state: ConnectionState;
  /** Failures that do not belong to one send: a failed connection attempt, an error frame without an id. */
  error: MessagingError;
  session: SessionInfo;
  /** A reconnect attempt starts (1 for the first one after a failure); as socket.io's `reconnect_attempt`. */
  reconnect_attempt: number;
  /** `reconnectionAttempts` attempts failed in a row; the client closes right after (reason `reconnect_failed`). */
  reconnect_failed: ReconnectFailedInfo;
  closed: ClosedInfo;
}

export interface SendOptions {
  timeoutMs?: number;
}
