// In browsers, '#sockjs' is sockjs-client's prebuilt bundle, which needs no `global` (see package.json "imports").
import SockJSClient from '#sockjs';
import { SOCKJS_QUERY_OPTIONS, type IceServer, type JsonValue, type ServerFrame } from '@messaging-server/protocol';
import { Emitter } from './emitter.js';
import { MessagingError, type MessagingErrorCode } from './errors.js';
import type { ClientEvents, ClosedInfo, ConnectOptions, ConnectionState, SendOptions, SessionInfo } from './options.js';
import {
  DEFAULT_RECONNECT,
  failureCode,
  failureError,
  nextAction,
  reconnectSchedule,
  type ReconnectEvent,
  type ReconnectSchedule,
  type StopReason,
} from './policy.js';
import { applyErrorFrame } from './error-frame.js';
import { Heartbeat } from './heartbeat.js';
import { Outbox } from './outbox.js';
import { ReceiptSender, receiptDelayOf } from './receipts.js';
import { RepeatFilter } from './repeat-filter.js';
import { RoomSet, type Room } from './rooms.js';
import { requestSession, sockjsUrl } from './session-request.js';
import { silentClientLogger, systemClock, type ClientLogger, type Clock, type SockJSConstructor, type SockJSLike } from './transport.js';

export type {
  ClientEvents,
  ClosedInfo,
  ConnectOptions,
  ConnectionState,
  IncomingMessage,
  ReconnectFailedInfo,
  SendOptions,
  SessionInfo,
} from './options.js';

const SOCKJS_OPEN = 1;
const MAX_AVOID = 8;

/**
 * One user's connection to the cluster. It keeps itself connected: recoverable closes and network loss go back
 * through `/connect` with backoff; terminal closes (4500–4999) and 4xx answers from `/connect` stop it.
 */
export class MessagingClient extends Emitter<ClientEvents> {
  readonly userId: string;
  readonly #options: ConnectOptions;
  readonly #fetch: typeof fetch;
  readonly #SockJS: SockJSConstructor;
  readonly #log: ClientLogger;
  readonly #clock: Clock;
  readonly #schedule: ReconnectSchedule;
  readonly #reconnection: boolean;
  readonly #reconnectionAttempts: number;
  readonly #sendTimeoutMs: number;

  #state: ConnectionState = 'connecting';
  #started = false;
  #welcomed = false;
  #generation = 0;
  #attempt = 0;
  #avoid: string[] = [];
  #socket: SockJSLike | undefined;
  #session: SessionInfo | undefined;
  #iceServers: IceServer[] | undefined;
  #abort: AbortController | undefined;
  readonly #outbox: Outbox;
  readonly #repeats: RepeatFilter;
  readonly #rooms: RoomSet;
  readonly #resendUnanswered: boolean;
  #reconnectTimer: unknown;
  #handshakeTimer: unknown;
  readonly #heartbeat: Heartbeat;
  /** v1.2 receipts; undefined with `receipts: false`. */
  readonly #receipts: ReceiptSender | undefined;
  #readyTimer: unknown;
  #ready: { resolve: () => void; reject: (error: MessagingError) => void } | undefined;

  constructor(options: ConnectOptions) {
    const logger = options.logger ?? silentClientLogger;
    super((error, event) => logger.error({ err: error, event: String(event) }, 'event listener threw'));
    this.userId = options.userId;
    this.#options = options;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#SockJS = options.SockJS ?? (SockJSClient as unknown as SockJSConstructor);
    this.#log = logger;
    this.#clock = options.clock ?? systemClock;
    this.#schedule = reconnectSchedule(options, options.random ?? Math.random);
    this.#reconnection = options.reconnection ?? DEFAULT_RECONNECT.reconnection;
    this.#reconnectionAttempts = options.reconnectionAttempts ?? DEFAULT_RECONNECT.reconnectionAttempts;
    this.#heartbeat = new Heartbeat({
      clock: this.#clock,
      intervalMs: options.pingIntervalMs ?? 25_000,
      timeoutMs: options.pingTimeoutMs ?? 10_000,
      send: (frame) => this.#socket?.send(frame),
      dead: () => {
        const nodeId = this.#session?.nodeId;
        this.#log.warn({ userId: this.userId, nodeId }, 'ping timed out');
        this.#dropSocket();
        this.#failAttempt({ kind: 'network', nodeId }, undefined);
      },
    });
    this.#outbox = new Outbox(this.#clock, options.maxQueue ?? 1000, options.maxMessageBytes ?? 65_536);
    this.#sendTimeoutMs = options.sendTimeoutMs ?? 15_000;
    this.#repeats = new RepeatFilter(options.repeatWindow ?? 4096);
    this.#resendUnanswered = options.resendUnanswered ?? true;
    this.#rooms = new RoomSet({ userId: this.userId, request: (fields) => this.#request(fields, this.#sendTimeoutMs) }, this.#repeats);
    const sendReceipt = (frame: string): void => this.#socket?.send(frame);
    this.#receipts = options.receipts === false ? undefined : new ReceiptSender(this.#clock, receiptDelayOf(options.receiptDelayMs), sendReceipt);
  }

  /** Messages received a second time with the same `(from, id)`, and dropped (contract v1.1). */
  get repeatsDropped(): number {
    return this.#repeats.dropped;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The node of the current connection; undefined while not open. */
  get nodeId(): string | undefined {
    return this.#state === 'open' ? this.#session?.nodeId : undefined;
  }

  get session(): SessionInfo | undefined {
    return this.#state === 'open' ? this.#session : undefined;
  }

  /**
   * The STUN/TURN servers the gateway handed out with the latest session (TURN entries with time-limited
   * credentials), or undefined when it has none. `createPeerConnection` uses them unless given its own.
   */
  get iceServers(): IceServer[] | undefined {
    return this.#iceServers;
  }

  /** Sends waiting for a connection. */
  get queuedCount(): number {
    return this.#outbox.queuedCount;
  }

  /** Sends written to the connection and waiting for their ack or error. */
  get inflightCount(): number {
    return this.#outbox.inflightCount;
  }

  /** Starts connecting; resolves on the first welcome, rejects if the client stops before that. */
  start(): Promise<void> {
    if (this.#started) throw new Error('client already started');
    this.#started = true;
    const ready = new Promise<void>((resolve, reject) => {
      this.#ready = { resolve, reject };
    });
    const timeoutMs = this.#options.connectTimeoutMs ?? 30_000;
    if (timeoutMs > 0) {
      this.#readyTimer = this.#clock.setTimeout(() => {
        this.#stop('connect_timeout', undefined, new MessagingError('TIMEOUT', `no welcome within ${timeoutMs} ms`));
      }, timeoutMs);
    }
    this.#emitState('connecting');
    void this.#connectOnce();
    return ready;
  }

  /**
   * Sends `content` to `to`. Resolves when the node acks the hand-over to the recipient's connection; rejects with
   * a MessagingError whose `code` is the contract's (PEER_UNAVAILABLE, EXPIRED, …) or the SDK's (TIMEOUT,
   * CONNECTION_LOST, SEND_QUEUE_FULL, CLOSED, MESSAGE_TOO_LARGE). Sends made while not open wait in a bounded queue
   * and go out in order after the next welcome.
   */
  send(to: string, content: JsonValue, options: SendOptions = {}): Promise<void> {
    return this.#request({ type: 'message', to, content }, options.timeoutMs ?? this.#sendTimeoutMs);
  }

  /**
   * Joins `room` (contract v1.2) and resolves with its Room once the node answers `joined` (members in join order,
   * this user included); rejects with INVALID_ROOM, ROOM_FULL, TOO_MANY_ROOMS, FORBIDDEN_ROOM, or the send errors.
   * Joining a room this client is in resolves with the same Room. Memberships outlive reconnects on the server's
   * side, so the SDK never re-joins by itself.
   */
  join(room: string): Promise<Room> {
    return this.#rooms.join(room);
  }

  /** The rooms this client is in, by name. */
  room(name: string): Room | undefined {
    return this.#rooms.get(name);
  }

  /** One frame with a fresh id through the outbox: resolves on its answer (ack, or `joined` for a join). */
  #request(fields: Record<string, JsonValue>, timeoutMs: number): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(new MessagingError('CLOSED', 'client is closed'));
    const open = this.#state === 'open';
    const sent = this.#outbox.request(fields, timeoutMs, !open);
    if (open) this.#flushOutbox();
    return sent;
  }

  /** Stops for good: no reconnect; queued and in-flight sends reject with CLOSED. */
  close(): void {
    this.#stop('client');
  }

  async #connectOnce(): Promise<void> {
    const generation = ++this.#generation;
    const stale = () => generation !== this.#generation || this.#state === 'closed';
    let token: string | undefined;
    try {
      token = this.#options.getToken ? await this.#options.getToken() : this.#options.token;
    } catch (error) {
      if (stale()) return;
      this.#log.warn({ userId: this.userId, err: error }, 'getToken failed');
      this.#failAttempt({ kind: 'gateway-unreachable' }, new MessagingError('GATEWAY_UNREACHABLE', `getToken failed: ${String(error)}`));
      return;
    }
    if (stale()) return;
    this.#abort = new AbortController();
    const result = await requestSession({
      gatewayUrl: this.#options.gatewayUrl,
      userId: this.userId,
      avoid: this.#avoid,
      room: this.#options.room,
      token,
      fetch: this.#fetch,
      clock: this.#clock,
      timeoutMs: this.#options.requestTimeoutMs ?? 10_000,
      abort: this.#abort,
    });
    if (stale()) return;
    if (!result.ok) {
      const { event, error } = result;
      if (event.kind === 'gateway-unreachable') this.#log.warn({ userId: this.userId, err: error }, 'gateway unreachable');
      else this.#log.warn({ userId: this.userId, status: error.status, code: error.code }, 'connect refused');
      this.#failAttempt(event, error);
      return;
    }
    const { session } = result;
    // Always the latest answer's: TURN credentials expire, and a /connect without them means none are configured now.
    this.#iceServers = session.iceServers;
    this.#openSocket(generation, session.listeningAddress, session.listeningKey, session.nodeId);
  }

  #openSocket(generation: number, listeningAddress: string, listeningKey: string, nodeId: string | undefined): void {
    const url = sockjsUrl(listeningAddress, this.#options.gatewayUrl, this.userId, listeningKey);
    if (this.#receipts) url.searchParams.set(SOCKJS_QUERY_OPTIONS.receipts, '1');
    this.#receipts?.reset();
    this.#log.debug({ userId: this.userId, nodeId, listeningAddress }, 'opening connection');
    this.#welcomed = false;
    this.#session = { userId: this.userId, nodeId: nodeId ?? '', listeningAddress };
    let socket: SockJSLike;
    try {
      socket = new this.#SockJS(url.toString(), undefined, this.#options.sockjsOptions ?? {});
    } catch (error) {
      this.#failAttempt({ kind: 'network', nodeId }, new MessagingError('CONNECTION_LOST', String(error)));
      return;
    }
    this.#socket = socket;
    socket.onmessage = (event) => {
      if (generation === this.#generation) this.#onFrame(event.data);
    };
    socket.onclose = (event) => {
      // sockjs (the server) passes the code through as given, so a server that closes with '4503' yields a string.
      if (generation === this.#generation) this.#onSocketClosed(Number(event.code), String(event.reason ?? ''));
    };
    const handshakeMs = this.#options.handshakeTimeoutMs ?? 10_000;
    this.#handshakeTimer = this.#clock.setTimeout(() => {
      if (generation !== this.#generation) return;
      this.#log.warn({ userId: this.userId, nodeId }, 'no welcome from node');
      this.#dropSocket();
      this.#failAttempt({ kind: 'network', nodeId }, new MessagingError('TIMEOUT', 'no welcome from node'));
    }, handshakeMs);
  }

  #onFrame(data: unknown): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(String(data)) as ServerFrame;
    } catch {
      this.#log.warn({ userId: this.userId }, 'unparseable frame from node');
      return;
    }
    if (frame === null || typeof frame !== 'object') return;
    switch (frame.type) {
      case 'welcome':
        this.#onWelcome(frame.nodeId);
        return;
      case 'joined':
      case 'member':
        this.#rooms.onFrame(frame, this.#outbox);
        return;
      case 'message':
        if (frame.seq !== undefined) this.#receipts?.received(frame.seq);
        if ('room' in frame) {
          this.#rooms.onMessage(frame); // v1.2 room messages belong to their Room, not to the direct 'message' event
          return;
        }
        if (frame.id === undefined) this.emit('message', { from: frame.from, to: frame.to, content: frame.content });
        else if (this.#repeats.admit(frame.from, frame.id)) this.emit('message', { from: frame.from, to: frame.to, content: frame.content, id: frame.id });
        return;
      case 'ack':
        this.#outbox.settle(frame.id);
        return;
      case 'error': {
        const unanswered = applyErrorFrame(frame, this.#outbox, this.#heartbeat);
        if (unanswered) this.emit('error', unanswered);
        return;
      }
      case 'pong':
        this.#heartbeat.pong(frame.id);
        return;
    }
  }

  #onWelcome(nodeId: string): void {
    if (this.#welcomed) return;
    this.#welcomed = true;
    this.#clock.clearTimeout(this.#handshakeTimer);
    this.#attempt = 0;
    this.#avoid = [];
    const listeningAddress = this.#session?.listeningAddress ?? '';
    this.#session = { userId: this.userId, nodeId, listeningAddress };
    this.#log.info({ userId: this.userId, nodeId }, 'connected');
    this.#emitState('open');
    this.emit('session', this.#session);
    this.#flushOutbox();
    this.#heartbeat.start();
    if (this.#ready) {
      this.#clock.clearTimeout(this.#readyTimer);
      this.#ready.resolve();
      this.#ready = undefined;
    }
  }

  #flushOutbox(): void {
    const socket = this.#socket;
    if (socket && socket.readyState === SOCKJS_OPEN) this.#outbox.flush((frame) => socket.send(frame));
  }

  #onSocketClosed(code: number, reason: string): void {
    const nodeId = this.#session?.nodeId || undefined;
    this.#log.info({ userId: this.userId, nodeId, code, reason }, 'connection closed');
    const welcomed = this.#welcomed;
    this.#dropSocket();
    this.#failAttempt(
      { kind: 'close', code, nodeId },
      welcomed ? undefined : new MessagingError('CONNECTION_LOST', `closed before welcome: ${code} ${reason}`),
    );
  }

  /**
   * Detaches the socket. Sends it left unanswered go again after the next welcome (`resendUnanswered`), unless the
   * client is stopping, when they fail with `failWith`.
   */
  #dropSocket(failWith: MessagingErrorCode = 'CONNECTION_LOST', reconnecting = true): void {
    this.#receipts?.flush(); // before the close frame: what this client has is not delivered again
    this.#generation++;
    this.#clock.clearTimeout(this.#handshakeTimer);
    this.#heartbeat.stop();
    this.#welcomed = false;
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) {
      socket.onopen = null;
      socket.onmessage = null;
      socket.onclose = null;
      try {
        socket.close(1000, 'client');
      } catch {
        // Already closed.
      }
    }
    if (reconnecting && this.#resendUnanswered) this.#outbox.requeueInflight();
    else this.#outbox.failInflight(failWith, failWith === 'CLOSED' ? 'client closed' : 'connection lost before the answer');
  }

  #failAttempt(event: ReconnectEvent, error: MessagingError | undefined): void {
    if (this.#state === 'closed') return;
    const action = nextAction(event, this.#attempt, this.#schedule);
    if (!action.reconnect) {
      const reasonError =
        error && event.kind === 'http'
          ? error
          : new MessagingError('CONNECTION_REJECTED', `connection closed: ${action.reason}`, action.code === undefined ? {} : { closeCode: action.code });
      this.#stop(action.reason, action.code, reasonError);
      return;
    }
    if (error) this.emit('error', error);
    const cause = error ?? failureError(event);
    if (!this.#reconnection) {
      this.#stop('reconnection_disabled', failureCode(event), cause);
      return;
    }
    if (this.#attempt >= this.#reconnectionAttempts) {
      this.emit('reconnect_failed', { attempts: this.#attempt, error: cause });
      this.#stop('reconnect_failed', failureCode(event), cause);
      return;
    }
    for (const nodeId of action.avoid) {
      if (nodeId && !this.#avoid.includes(nodeId)) this.#avoid.push(nodeId);
    }
    this.#avoid = this.#avoid.slice(-MAX_AVOID);
    const attempt = ++this.#attempt;
    this.#log.info({ userId: this.userId, attempt, delayMs: action.delayMs }, 'reconnecting');
    this.#emitState(this.#welcomedOnce ? 'reconnecting' : this.#state);
    this.#clock.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = this.#clock.setTimeout(() => {
      this.emit('reconnect_attempt', attempt);
      void this.#connectOnce();
    }, action.delayMs);
  }

  get #welcomedOnce(): boolean {
    return this.#ready === undefined;
  }

  #stop(reason: StopReason, code?: number, error?: MessagingError): void {
    if (this.#state === 'closed') return;
    this.#dropSocket(reason === 'client' ? 'CLOSED' : 'CONNECTION_LOST', false);
    this.#generation++;
    this.#abort?.abort();
    this.#clock.clearTimeout(this.#reconnectTimer);
    this.#clock.clearTimeout(this.#readyTimer);
    this.#outbox.failQueued('CLOSED', `client closed: ${reason}`, reason === 'client' ? 'CLOSED' : 'CONNECTION_LOST');
    this.#rooms.closeAll();
    this.#log.info({ userId: this.userId, reason, code }, 'client closed');
    this.#emitState('closed');
    const info: ClosedInfo = { reason };
    if (code !== undefined) info.code = code;
    if (error) info.error = error;
    this.emit('closed', info);
    if (this.#ready) {
      this.#ready.reject(error ?? new MessagingError('CLOSED', `client closed: ${reason}`));
      this.#ready = undefined;
    }
  }

  #emitState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit('state', state);
  }
}

/** Connects and resolves with an open client after the first welcome. */
export async function connect(options: ConnectOptions): Promise<MessagingClient> {
  const client = new MessagingClient(options);
  await client.start();
  return client;
}
