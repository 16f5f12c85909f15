import { randomBytes } from 'node:crypto';
import type { Logger } from '@messaging-server/core';
import { CLOSE_CODES, isRecoverableClose, type CloseReason, type FrameErrorCode, type ServerFrame, type SessionRecord } from '@messaging-server/protocol';
import type { ClientConnection } from './client-connection.js';
import type { Envelope } from './envelope.js';
import { TokenBucket } from './token-bucket.js';

export type SessionState = 'handshaking' | 'open' | 'closed';

/** Per-connection limits, from the node's configuration. */
export interface SessionLimits {
  rateMessagesPerSecond: number;
  rateBurst: number;
  rateBytesPerSecond: number;
  /** At least one maximum-size frame, or the byte bucket would refuse it forever. */
  bytesBurst: number;
}

/** What every session reports to the node's metrics. */
export interface SessionCounters {
  ack(): void;
  error(code: FrameErrorCode): void;
}

/**
 * One client connection and the session it holds on this node: its state, rate buckets and bookkeeping, and the
 * only way to write frames to it or close it. Owners change its state through its methods, never its fields.
 *
 * Lifecycle: handshaking → open (welcome sent) → closed; or handshaking → closed (refused).
 */
export class ClientSession {
  readonly cid = randomBytes(12).toString('base64url');
  readonly openedAt = Date.now();
  readonly messageBucket: TokenBucket;
  readonly byteBucket: TokenBucket;
  #state: SessionState = 'handshaking';
  #userId = '';
  #key = '';
  /** Frames received before the welcome, handled right after it. */
  #early: string[] = [];
  /** Set once the session was written acked by this connection: its close then deletes the session. */
  #record: SessionRecord | undefined;
  #replaced = false;
  /** Why this node closed the connection, if it did. */
  #closeReason: CloseReason | undefined;
  /** Last frame received (or the connection's start): an idle connection is closed. */
  lastActivity = Date.now();
  /** Bookkeeping of the SessionKeeper. */
  nextReassertAt = 0;
  reasserting = false;
  /** Messages with an id sent by this connection whose ack or error is still to come: a drain waits for them. */
  unsettled = 0;

  constructor(
    readonly conn: ClientConnection,
    limits: SessionLimits,
    private readonly counters: SessionCounters,
    private readonly log: Logger,
  ) {
    this.messageBucket = new TokenBucket(limits.rateMessagesPerSecond, limits.rateBurst);
    this.byteBucket = new TokenBucket(limits.rateBytesPerSecond, limits.bytesBurst);
  }

  get state(): SessionState {
    return this.#state;
  }

  get userId(): string {
    return this.#userId;
  }

  get key(): string {
    return this.#key;
  }

  get record(): SessionRecord | undefined {
    return this.#record;
  }

  get closeReason(): CloseReason | undefined {
    return this.#closeReason;
  }

  /** This node closed the connection with a recoverable code (a drain, an idle timeout): its user will be back. */
  get closedForMove(): boolean {
    return this.#closeReason !== undefined && isRecoverableClose(CLOSE_CODES[this.#closeReason]);
  }

  /** A newer /connect took this user's session: the connection is closed (or refused) with 4503. */
  get replaced(): boolean {
    return this.#replaced;
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  get isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** The credentials the handshake read from the connection's URL. */
  identify(userId: string, key: string): void {
    this.#userId = userId;
    this.#key = key;
  }

  /** The acked record this connection wrote (or is writing); undefined when that write failed. */
  claim(record: SessionRecord | undefined): void {
    this.#record = record;
  }

  /** Keeps a frame that arrived before the welcome; false when too many piled up (the caller closes). */
  holdEarly(text: string, max: number): boolean {
    this.#early.push(text);
    return this.#early.length <= max;
  }

  /** handshaking → open. Returns the frames that arrived before, in order. */
  open(): string[] {
    this.#state = 'open';
    return this.#early.splice(0);
  }

  /** The connection's close event: → closed. Returns whether it had been open. */
  markClosed(): boolean {
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    this.#early = [];
    return wasOpen;
  }

  send(frame: ServerFrame): boolean {
    if (this.#state === 'closed') return false;
    return this.conn.write(JSON.stringify(frame));
  }

  /** The hot frames are built as text: the same bytes as JSON.stringify of the frame, without the object. */
  sendAck(id: string): void {
    this.counters.ack();
    if (this.#state !== 'closed') this.conn.write(`{"type":"ack","id":${JSON.stringify(id)}}`);
  }

  sendError(code: FrameErrorCode, message: string, id?: string): void {
    this.counters.error(code);
    this.send(id === undefined ? { type: 'error', code, message } : { type: 'error', code, message, id });
  }

  /** Writes a relayed message; false when the connection can no longer take it. */
  writeMessage(envelope: Envelope): boolean {
    if (this.#state === 'closed') return false;
    const head = `{"type":"message","from":${JSON.stringify(envelope.from)},"to":${JSON.stringify(envelope.to)},"content":${JSON.stringify(envelope.content)}`;
    return this.conn.write(envelope.id === undefined ? `${head}}` : `${head},"id":${JSON.stringify(envelope.id)}}`);
  }

  /** The one way to end a connection: queued frames, then the close frame with the contract's code. */
  close(reason: CloseReason): void {
    if (this.#state === 'closed') return;
    this.#closeReason ??= reason;
    try {
      this.conn.close(CLOSE_CODES[reason], reason);
    } catch (error) {
      this.log.warn({ userId: this.#userId, err: error }, 'connection close failed');
    }
  }

  /** A newer session took this user over: 4503 now, or, while the handshake runs, as soon as it can. */
  replace(): void {
    this.#replaced = true;
    if (this.#state === 'open') this.close('session_replaced');
  }
}
