import SockJSClient from 'sockjs-client';
import type { ErrorBody, JsonValue, ServerFrame, Session } from '@messaging-server/protocol';
import { Emitter } from './emitter.js';
import { MessagingError, type MessagingErrorCode } from './errors.js';
import { DEFAULT_BACKOFF, nextAction, type BackoffOptions, type ReconnectEvent, type StopReason } from './policy.js';
import {
  silentClientLogger,
  systemClock,
  type ClientLogger,
  type Clock,
  type SockJSConstructor,
  type SockJSLike,
  type SockJSOptions,
} from './transport.js';

export interface ConnectOptions {
  /** Base URL of a gateway, e.g. `http://127.0.0.1:8080` (in a browser on the gateway's page: `location.origin`). */
  gatewayUrl: string;
  userId: string;
  /** Bearer token for `/connect` when the gateway requires authentication. */
  token?: string;
  /** Called before every `/connect`, so a token can be refreshed between reconnects. Wins over `token`. */
  getToken?: () => string | Promise<string>;
  fetch?: typeof fetch;
  SockJS?: SockJSConstructor;
  sockjsOptions?: SockJSOptions;
  logger?: ClientLogger;
  backoff?: Partial<BackoffOptions>;
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
  clock?: Clock;
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

export interface ClientEvents {
  message: IncomingMessage;
  state: ConnectionState;
  /** Failures that do not belong to one send: a failed connection attempt, an error frame without an id. */
  error: MessagingError;
  session: SessionInfo;
  closed: ClosedInfo;
}

export interface SendOptions {
  timeoutMs?: number;
}

interface PendingSend {
  id: string;
  frame: string;
  resolve: () => void;
  reject: (error: MessagingError) => void;
  timer: unknown;
}

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
  readonly #random: () => number;
  readonly #backoff: BackoffOptions;
  readonly #pingIntervalMs: number;
  readonly #pingTimeoutMs: number;
  readonly #maxQueue: number;
  readonly #sendTimeoutMs: number;

  #state: ConnectionState = 'connecting';
  #started = false;
  #welcomed = false;
  #generation = 0;
  #attempt = 0;
  #avoid: string[] = [];
  #counter = 0;
  #socket: SockJSLike | undefined;
  #session: SessionInfo | undefined;
  #abort: AbortController | undefined;
  #queue: PendingSend[] = [];
  readonly #inflight = new Map<string, PendingSend>();
  #reconnectTimer: unknown;
  #handshakeTimer: unknown;
  #pingTimer: unknown;
  #pongTimer: unknown;
  #pingId: string | undefined;
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
    this.#random = options.random ?? Math.random;
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.#pingIntervalMs = options.pingIntervalMs ?? 25_000;
    this.#pingTimeoutMs = options.pingTimeoutMs ?? 10_000;
    this.#maxQueue = options.maxQueue ?? 1000;
    this.#sendTimeoutMs = options.sendTimeoutMs ?? 15_000;
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

  /** Sends waiting for a connection. */
  get queuedCount(): number {
    return this.#queue.length;
  }

  /** Sends written to the connection and waiting for their ack or error. */
  get inflightCount(): number {
    return this.#inflight.size;
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
    if (this.#state === 'closed') return Promise.reject(new MessagingError('CLOSED', 'client is closed'));
    const id = String(++this.#counter);
    const frame = JSON.stringify({ type: 'message', to, content, id });
    const maxBytes = this.#options.maxMessageBytes ?? 65_536;
    if (new TextEncoder().encode(frame).length > maxBytes) {
      return Promise.reject(
        new MessagingError('MESSAGE_TOO_LARGE', `frame is over ${maxBytes} bytes`, { messageId: id }),
      );
    }
    const open = this.#state === 'open';
    if (!open && this.#queue.length >= this.#maxQueue) {
      return Promise.reject(
        new MessagingError('SEND_QUEUE_FULL', `send queue is at its limit of ${this.#maxQueue}`, { messageId: id }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.#sendTimeoutMs;
      const pending: PendingSend = { id, frame, resolve, reject, timer: undefined };
      pending.timer = this.#clock.setTimeout(() => {
        this.#queue = this.#queue.filter((p) => p !== pending);
        this.#inflight.delete(id);
        reject(new MessagingError('TIMEOUT', `no answer within ${timeoutMs} ms`, { messageId: id }));
      }, timeoutMs);
      if (open) this.#write(pending);
      else this.#queue.push(pending);
    });
  }

  /** Stops for good: no reconnect; queued and in-flight sends reject with CLOSED. */
  close(): void {
    this.#stop('client');
  }

  async #connectOnce(): Promise<void> {
    const generation = ++this.#generation;
    const stale = () => generation !== this.#generation || this.#state === 'closed';
    const body: { userId: string; avoid?: string[] } = { userId: this.userId };
    if (this.#avoid.length > 0) body.avoid = [...this.#avoid];
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    let response: Response;
    let timer: unknown;
    try {
      const token = this.#options.getToken ? await this.#options.getToken() : this.#options.token;
      if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
      if (stale()) return;
      const abort = new AbortController();
      this.#abort = abort;
      const timeoutMs = this.#options.requestTimeoutMs ?? 10_000;
      timer = this.#clock.setTimeout(() => abort.abort(), timeoutMs);
      response = await this.#fetch(connectUrl(this.#options.gatewayUrl), {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: abort.signal,
      });
    } catch (error) {
      this.#clock.clearTimeout(timer);
      if (stale()) return;
      this.#log.warn({ userId: this.userId, err: String(error) }, 'gateway unreachable');
      this.#failAttempt(
        { kind: 'gateway-unreachable' },
        new MessagingError('GATEWAY_UNREACHABLE', `gateway unreachable: ${String(error)}`),
      );
      return;
    }
    let payload: unknown;
    try {
      payload = await response.json();
    } catch {
      payload = undefined;
    } finally {
      this.#clock.clearTimeout(timer);
    }
    if (stale()) return;
    if (!response.ok) {
      const code = errorCodeOf(payload);
      this.#log.warn({ userId: this.userId, status: response.status, code }, 'connect refused');
      this.#failAttempt(
        { kind: 'http', status: response.status, code },
        new MessagingError(code ?? 'HTTP_ERROR', errorMessageOf(payload) ?? `/connect answered ${response.status}`, {
          status: response.status,
        }),
      );
      return;
    }
    const session = payload as Partial<Session> | undefined;
    if (typeof session?.listeningAddress !== 'string' || typeof session.listeningKey !== 'string') {
      this.#failAttempt(
        { kind: 'http', status: 502 },
        new MessagingError('INTERNAL', '/connect answered without a session', { status: response.status }),
      );
      return;
    }
    this.#openSocket(generation, session.listeningAddress, session.listeningKey, session.nodeId);
  }

  #openSocket(generation: number, listeningAddress: string, listeningKey: string, nodeId: string | undefined): void {
    const url = new URL(listeningAddress, this.#options.gatewayUrl);
    url.searchParams.set('userId', this.userId);
    url.searchParams.set('listeningKey', listeningKey);
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
      case 'message':
        this.emit('message', frame.id === undefined
          ? { from: frame.from, to: frame.to, content: frame.content }
          : { from: frame.from, to: frame.to, content: frame.content, id: frame.id });
        return;
      case 'ack': {
        const pending = this.#inflight.get(frame.id);
        if (!pending) return;
        this.#inflight.delete(frame.id);
        this.#clock.clearTimeout(pending.timer);
        pending.resolve();
        return;
      }
      case 'error': {
        const error = new MessagingError(frame.code, frame.message, frame.id === undefined ? {} : { messageId: frame.id });
        const pending = frame.id === undefined ? undefined : this.#inflight.get(frame.id);
        if (pending) {
          this.#inflight.delete(pending.id);
          this.#clock.clearTimeout(pending.timer);
          pending.reject(error);
        } else if (frame.id === undefined || frame.id !== this.#pingId) {
          this.emit('error', error);
        }
        // One RATE_LIMITED answers a whole burst: every other id it names fails the same way.
        for (const id of frame.ids ?? []) {
          const each = id === frame.id ? undefined : this.#inflight.get(id);
          if (!each) continue;
          this.#inflight.delete(id);
          this.#clock.clearTimeout(each.timer);
          each.reject(new MessagingError(frame.code, frame.message, { messageId: id }));
        }
        return;
      }
      case 'pong':
        if (this.#pingId !== undefined && (frame.id === undefined || frame.id === this.#pingId)) {
          this.#pingId = undefined;
          this.#clock.clearTimeout(this.#pongTimer);
          this.#schedulePing();
        }
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
    const queued = this.#queue;
    this.#queue = [];
    for (const pending of queued) this.#write(pending);
    this.#schedulePing();
    if (this.#ready) {
      this.#clock.clearTimeout(this.#readyTimer);
      this.#ready.resolve();
      this.#ready = undefined;
    }
  }

  #write(pending: PendingSend): void {
    const socket = this.#socket;
    if (!socket || socket.readyState !== SOCKJS_OPEN) {
      this.#queue.push(pending);
      return;
    }
    this.#inflight.set(pending.id, pending);
    try {
      socket.send(pending.frame);
    } catch (error) {
      this.#inflight.delete(pending.id);
      this.#clock.clearTimeout(pending.timer);
      pending.reject(new MessagingError('CONNECTION_LOST', String(error), { messageId: pending.id }));
    }
  }

  #schedulePing(): void {
    if (this.#pingIntervalMs <= 0) return;
    this.#clock.clearTimeout(this.#pingTimer);
    const generation = this.#generation;
    this.#pingTimer = this.#clock.setTimeout(() => {
      if (generation !== this.#generation || this.#state !== 'open') return;
      const id = `p${++this.#counter}`;
      this.#pingId = id;
      try {
        this.#socket?.send(JSON.stringify({ type: 'ping', id }));
      } catch {
        // A socket that cannot send is caught by the pong deadline below.
      }
      this.#pongTimer = this.#clock.setTimeout(() => {
        if (generation !== this.#generation) return;
        const nodeId = this.#session?.nodeId;
        this.#log.warn({ userId: this.userId, nodeId }, 'ping timed out');
        this.#dropSocket();
        this.#failAttempt({ kind: 'network', nodeId }, undefined);
      }, this.#pingTimeoutMs);
    }, this.#pingIntervalMs);
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

  /** Detaches and closes the current socket and fails what was written to it. */
  #dropSocket(failWith: MessagingErrorCode = 'CONNECTION_LOST'): void {
    this.#generation++;
    this.#clock.clearTimeout(this.#handshakeTimer);
    this.#clock.clearTimeout(this.#pingTimer);
    this.#clock.clearTimeout(this.#pongTimer);
    this.#pingId = undefined;
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
    // Their fate is unknown (the node may have relayed them): reject rather than resend, so nothing arrives twice.
    const inflight = [...this.#inflight.values()];
    this.#inflight.clear();
    for (const pending of inflight) {
      this.#clock.clearTimeout(pending.timer);
      const message = failWith === 'CLOSED' ? 'client closed' : 'connection lost before the answer';
      pending.reject(new MessagingError(failWith, message, { messageId: pending.id }));
    }
  }

  #failAttempt(event: ReconnectEvent, error: MessagingError | undefined): void {
    if (this.#state === 'closed') return;
    const action = nextAction(event, this.#attempt, this.#backoff, this.#random);
    if (action.reconnect && error) this.emit('error', error);
    if (!action.reconnect) {
      const reasonError =
        error && event.kind === 'http'
          ? error
          : new MessagingError('CONNECTION_REJECTED', `connection closed: ${action.reason}`, closeDetails(action.code));
      this.#stop(action.reason, action.code, reasonError);
      return;
    }
    for (const nodeId of action.avoid) {
      if (nodeId && !this.#avoid.includes(nodeId)) this.#avoid.push(nodeId);
    }
    this.#avoid = this.#avoid.slice(-MAX_AVOID);
    this.#attempt++;
    this.#log.info({ userId: this.userId, attempt: this.#attempt, delayMs: action.delayMs }, 'reconnecting');
    this.#emitState(this.#welcomedOnce ? 'reconnecting' : this.#state);
    this.#clock.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = this.#clock.setTimeout(() => void this.#connectOnce(), action.delayMs);
  }

  get #welcomedOnce(): boolean {
    return this.#ready === undefined;
  }

  #stop(reason: StopReason, code?: number, error?: MessagingError): void {
    if (this.#state === 'closed') return;
    this.#dropSocket(reason === 'client' ? 'CLOSED' : 'CONNECTION_LOST');
    this.#generation++;
    this.#abort?.abort();
    this.#clock.clearTimeout(this.#reconnectTimer);
    this.#clock.clearTimeout(this.#readyTimer);
    const queued = this.#queue;
    this.#queue = [];
    for (const pending of queued) {
      this.#clock.clearTimeout(pending.timer);
      pending.reject(new MessagingError('CLOSED', `client closed: ${reason}`, { messageId: pending.id }));
    }
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

function connectUrl(gatewayUrl: string): string {
  return `${gatewayUrl.replace(/\/+$/, '')}/connect`;
}

function errorCodeOf(payload: unknown): MessagingErrorCode | undefined {
  const code = (payload as Partial<ErrorBody> | undefined)?.error?.code;
  return typeof code === 'string' ? code : undefined;
}

function errorMessageOf(payload: unknown): string | undefined {
  const message = (payload as Partial<ErrorBody> | undefined)?.error?.message;
  return typeof message === 'string' ? message : undefined;
}

function closeDetails(code: number | undefined): { closeCode?: number } {
  return code === undefined ? {} : { closeCode: code };
}
