import { randomToken, type Logger } from '@messaging-server/core';
import { CLOSE_CODES, isRecoverableClose, type CloseReason, type FrameErrorCode, type ServerFrame, type SessionRecord } from '@messaging-server/protocol';
import type { ClientConnection } from './client-connection.js';
import type { Envelope } from './envelope.js';
import { TokenBucket } from './token-bucket.js';
import { Unconfirmed } from './unconfirmed.js';

export type SessionState = 'handshaking' | 'open' | 'closed';

/** Per-connection limits, from the node's configuration. */
export interface SessionLimits {
  rateMessagesPerSecond: number;
  rateBurst: number;
  rateBytesPerSecond: number;
  /** At least one maximum-size frame, or the byte bucket would refuse it forever. */
  bytesBurst: number;
  /** Bytes written to the connection and not read by the client yet; past it the connection is closed (4005). */
  maxBufferedBytes: number;
}

/** What every session reports to the node's metrics. */
export interface SessionCounters {
  ack(): void;
  error(code: FrameErrorCode): void;
  /** The node closed the connection, for this reason. */
  closed(reason: CloseReason): void;
}

/**
 * One client connection and the session it holds on this node: its state, rate buckets and bookkeeping, and the
 * only way to write frames to it or close it. Owners change its state through its methods, never its fields.
 *
 * Lifecycle: handshaking → open (welcome sent) → closed; or handshaking → closed (refused).
 */
export class ClientSession {
  readonly cid = randomToken(12);
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
  /** close() was called: nothing more is written, so nothing more counts as handed to this client. */
  #closing = false;
  #earlyBytes = 0;
  /**
   * The client asked (`coalesce=1`) for one RATE_LIMITED error per burst naming every id in `ids`. Without it each
   * refused id gets its own error, as v1 promises: a v1 client reads only `id`.
   */
  coalescesRefusals = false;
  /** RATE_LIMITED answers of the current burst, sent as one error frame at the end of the event-loop turn. */
  #limited: { ids: string[]; scheduled: boolean } = { ids: [], scheduled: false };
  /** Last frame received (or the connection's start): an idle connection is closed. */
  lastActivity = Date.now();
  /** Bookkeeping of the SessionKeeper. */
  nextReassertAt = 0;
  reasserting = false;
  /** Messages with an id sent by this connection whose ack or error is still to come: a drain waits for them. */
  unsettled = 0;
  /** v1.2: set when the connection was opened with `receipts=1`. */
  #receipts: Unconfirmed | undefined;

  constructor(
    readonly conn: ClientConnection,
    private readonly limits: SessionLimits,
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

  get receipts(): Unconfirmed | undefined {
    return this.#receipts;
  }

  /** The connection asked for receipts (v1.2): every message written carries a seq; 4006 when they stall. */
  enableReceipts(maxUnconfirmed: number): void {
    this.#receipts = new Unconfirmed(maxUnconfirmed, () => this.close('receipts_stalled'));
  }

  /** The acked record this connection wrote (or is writing); undefined when that write failed. */
  claim(record: SessionRecord | undefined): void {
    this.#record = record;
  }

  /**
   * Keeps a frame that arrived before the welcome; false when too many piled up, by count or by bytes (more than the
   * byte burst, which the rate limit would refuse anyway), and the caller closes.
   */
  holdEarly(text: string, max: number): boolean {
    this.#early.push(text);
    this.#earlyBytes += text.length;
    return this.#early.length <= max && this.#earlyBytes <= this.limits.bytesBurst;
  }

  /** handshaking → open. Returns the frames that arrived before, in order. */
  open(): string[] {
    this.#state = 'open';
    this.#earlyBytes = 0;
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
    return this.write(JSON.stringify(frame));
  }

  /** The hot frames are built as text: the same bytes as JSON.stringify of the frame, without the object. */
  sendAck(id: string): void {
    if (this.write(`{"type":"ack","id":${JSON.stringify(id)}}`)) this.counters.ack();
  }

  sendError(code: FrameErrorCode, message: string, id?: string): void {
    if (this.send(id === undefined ? { type: 'error', code, message } : { type: 'error', code, message, id })) this.counters.error(code);
  }

  /**
   * A frame refused by the rate limit. A frame with an id gets its own answer unless the client opted in to
   * coalescing; the rest join the others of the same burst (this event-loop turn) in one error frame, so a flood of
   * tiny frames cannot make the node write more than it was sent. The write bound (4005) caps the per-id answers.
   */
  rateLimited(id: string | undefined, message: string): void {
    if (id !== undefined && !this.coalescesRefusals) {
      this.sendError('RATE_LIMITED', message, id);
      return;
    }
    const burst = this.#limited;
    if (id !== undefined) burst.ids.push(id);
    if (burst.scheduled) return;
    burst.scheduled = true;
    setImmediate(() => this.flushRateLimited(burst, message));
  }

  private flushRateLimited(burst: { ids: string[]; scheduled: boolean }, message = 'rate limit exceeded'): void {
    if (this.#limited !== burst || !burst.scheduled) return;
    this.#limited = { ids: [], scheduled: false };
    const [first] = burst.ids;
    const frame: ServerFrame = { type: 'error', code: 'RATE_LIMITED', message };
    if (first !== undefined) frame.id = first;
    if (burst.ids.length > 1) frame.ids = burst.ids;
    if (this.send(frame)) this.counters.error('RATE_LIMITED');
  }

  /**
   * Writes a relayed message; false when the connection can no longer take it. With receipts on it carries the next
   * seq and is tracked until confirmed (with its envelope only if it has an id; `cost` is its held bytes).
   */
  writeMessage(envelope: Envelope, cost = 0): boolean {
    if (this.#state === 'closed' || this.#closing) return false;
    const head = `{"type":"message","from":${JSON.stringify(envelope.from)},"to":${JSON.stringify(envelope.to)},"content":${JSON.stringify(envelope.content)}`;
    const text = envelope.id === undefined ? head : `${head},"id":${JSON.stringify(envelope.id)}`;
    const receipts = this.#receipts;
    if (receipts === undefined) return this.write(`${text}}`);
    if (!this.write(`${text},"seq":${String(receipts.nextSeq)}}`)) return false;
    receipts.written(envelope.id === undefined ? undefined : envelope, cost);
    return true;
  }

  /**
   * v1.2: writes a frame a room's home fanned out. A room message on a connection with receipts on carries the next
   * seq and is tracked until confirmed (kept, to go back to its room, only if it has an id). `onSafe` runs once the
   * frame no longer depends on this node's memory: at once when written to a connection without receipts (v1.1's
   * "handed to the connection"), else when confirmed or handed back to the room. Not at all when this returns false.
   */
  writeRoomFrame(frame: ServerFrame, onSafe?: () => void): boolean {
    const receipts = this.#receipts;
    const tracked = receipts !== undefined && frame.type === 'message';
    if (!tracked) {
      if (!this.send(frame)) return false;
      onSafe?.();
      return true;
    }
    if (this.#state === 'closed' || this.#closing) return false;
    if (!this.send({ ...frame, seq: receipts.nextSeq })) return false;
    const kept = 'id' in frame && frame.id !== undefined;
    receipts.written(undefined, 0, Date.now(), kept ? frame : undefined, kept ? onSafe : undefined);
    if (!kept) onSafe?.();
    return true;
  }

  /**
   * Every frame goes through here. A client that leaves more than maxBufferedBytes unread is closed (4005): what it
   * does not read must not pin node memory, and a frame that would pass the bound is not written (nor counted as
   * delivered).
   */
  private write(text: string): boolean {
    if (this.#state === 'closed' || this.#closing) return false;
    if (this.conn.buffered + text.length > this.limits.maxBufferedBytes) {
      this.log.warn({ userId: this.#userId, buffered: this.conn.buffered }, 'closing a connection that does not read');
      this.close('slow_consumer');
      return false;
    }
    return this.conn.write(text);
  }

  /** The one way to end a connection: queued frames, then the close frame with the contract's code. */
  close(reason: CloseReason): void {
    if (this.#state === 'closed' || this.#closing) return;
    this.#closeReason ??= reason;
    // The burst's answer goes before the close frame (unless the close is for not reading).
    if (reason !== 'slow_consumer') this.flushRateLimited(this.#limited);
    this.#closing = true;
    this.counters.closed(reason);
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
