import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import sockjs from 'sockjs';
import type { Connection } from 'sockjs';
import {
  instrumentRegistry,
  instrumentSessionStore,
  originAllowed,
  type Logger,
  type NodeConfig,
  type NodeRegistration,
  type PeerTransport,
  type Registry,
  type RegistryEvent,
  type RegistryWatch,
  type SessionStore,
} from '@messaging-server/core';
import {
  CLOSE_CODES,
  isValidUserId,
  type CloseReason,
  type FrameErrorCode,
  type NodeRecord,
  type ServerFrame,
  type SessionRecord,
} from '@messaging-server/protocol';
import { parseClientFrame } from '@messaging-server/protocol/schemas';
import { fromSockJs, type ClientConnection } from './client-connection.js';
import type { Envelope, Outcome } from './envelope.js';
import { createInternalApi, type Readiness } from './internal-api.js';
import type { DeliverRequest, DeliverResult, ForwardedMessage, OutcomeReport } from './internal-wire.js';
import { createNodeMetrics } from './metrics.js';
import { PendingQueues } from './pending-queues.js';
import { Router, type Location } from './router.js';
import { secretsEqual } from './secure-compare.js';
import { SessionKeeper } from './session-keeper.js';
import { closePaced } from './drain-pacer.js';
import { TokenBucket } from './token-bucket.js';
import { createWsTransport, type WsTransport } from './ws-transport.js';

export interface NodeDeps {
  config: NodeConfig;
  registry: Registry;
  sessions: SessionStore;
  transport: PeerTransport;
  logger: Logger;
  version?: string;
}

export interface RelayNode {
  readonly nodeId: string;
  /**
   * Mounts the SockJS endpoint (path from the pathname of config.publicUrl, default /ws) on an http.Server: its two
   * websocket transports served by `ws`, every HTTP fallback and /info by sockjs.
   */
  installSockJs(server: Server): void;
  /** Node http handler for the internal API (/internal/...), /healthz, /readyz, /metrics. Returns false if the path is not its own. */
  handleInternal(req: IncomingMessage, res: ServerResponse): boolean;
  /** Registers nodes/<id> and load/<id> and starts watching the registry. Rethrows ALREADY_REGISTERED. */
  start(): Promise<void>;
  /** The contract's drain; resolves when the node is empty or the drain timeout passed, with its keys revoked. */
  drain(): Promise<void>;
  /** Hard stop: closes connections without draining, revokes the registration. */
  close(): Promise<void>;
  /** Resolves when a drain (from drain(), POST /internal/v1/drain) has finished; the CLI exits then. */
  readonly drained: Promise<void>;
  readonly stats: { connections: number; pending: number };
  /** The prom-client text exposition of this node's metrics. */
  metricsText(): Promise<string>;
}

type ClientState = 'handshaking' | 'open' | 'closed';

interface Client {
  cid: string;
  conn: ClientConnection;
  userId: string;
  key: string;
  state: ClientState;
  /** Frames received before the handshake completed, processed right after welcome. */
  early: string[];
  bucket: TokenBucket;
  bytes: TokenBucket;
  /** Last frame received (or the connection's start): an idle connection is closed after idleTimeoutSeconds. */
  lastActivity: number;
  openedAt: number;
  /** Set once the session was written acked by this connection: its close then deletes the session. */
  record?: SessionRecord | undefined;
  replaced: boolean;
  nextReassertAt: number;
  reasserting: boolean;
  /** Messages with an id sent by this connection whose ack or error is still to come: a drain waits for them. */
  unsettled: number;
}

/** How long into a drain a client's close may wait for the outcomes of its own messages (forwards time out at 1.5 s). */
const DRAIN_SETTLE_WAIT_MS = 2000;
/** How long a drain waits for its last clients' close events and session deletes before it revokes and resolves. */
const DRAIN_CLOSE_WAIT_MS = 2000;
const LOAD_INTERVAL_MS = 1000;
/** A handshake normally takes one or two store calls; one stuck longer than this is refused (4002, recoverable). */
const HANDSHAKE_DEADLINE_MS = 10_000;
/** Query parameter set by the node itself (never trusted from the client) on requests whose Origin is not allowed. */
const ORIGIN_DENIED_PARAM = 'msg_origin_denied';

function randomId(): string {
  return randomBytes(12).toString('base64url');
}

function sockJsPrefix(publicUrl: string): string {
  const path = new URL(publicUrl).pathname.replace(/\/+$/, '');
  return path === '' ? '/ws' : path;
}

export function createNode(deps: NodeDeps): RelayNode {
  const { config, transport } = deps;
  const nodeId = config.nodeId;
  const log = deps.logger.child({ nodeId });
  const version = deps.version ?? '0.0.0';
  const pendingTotalMax = config.pendingMax * 100;
  const bodyLimit = Math.max(8 << 20, config.maxMessageBytes * 4 + (64 << 10));
  // A frame of maxMessageBytes must always fit, or the byte bucket would refuse it forever.
  const bytesBurst = Math.max(config.rateBytesBurst, config.maxMessageBytes);
  // sockjs-client escapes some characters as \uXXXX and wraps frames in a JSON array: leave room for that, so an
  // over-limit frame still gets MESSAGE_TOO_LARGE; far larger WebSocket frames are cut by the transport (1009).
  const transportFrameLimit = config.maxMessageBytes * 8 + 4096;

  const clients = new Map<string, Client>(); // open clients by userId
  const clientsByCid = new Map<string, Client>();
  const handshakes = new Set<Client>();

  let registration: NodeRegistration | undefined;
  let watch: RegistryWatch | undefined;
  let draining = false;
  const sessionDeletes = new Set<Promise<unknown>>();
  let closed = false;
  let drainPromise: Promise<void> | undefined;
  let resolveDrained!: () => void;
  const drained = new Promise<void>((resolve) => {
    resolveDrained = resolve;
  });
  let lastLoad = '';
  const timers = new Set<NodeJS.Timeout>();

  const pending = new PendingQueues(config.pendingMax, pendingTotalMax, config.pendingTtlMs, (envelope) =>
    settle(envelope, 'EXPIRED'),
  );
  const metrics = createNodeMetrics({ connections: () => clients.size, pending: () => pending.size }, nodeId);
  // Every etcd and memcached call of this node is timed at the contract boundary (msg_etcd_*, msg_memcached_*).
  const registry = instrumentRegistry(deps.registry, metrics.etcd);
  const sessions = instrumentSessionStore(deps.sessions, metrics.memcached);
  const keeper = new SessionKeeper<Client>({
    sessions,
    nodeId,
    sessionTtlSeconds: config.sessionTtlSeconds,
    log,
    onReplaced: (client) => {
      client.replaced = true;
      closeClient(client, 'session_replaced');
    },
  });
  const router = new Router({
    nodeId,
    replyTo: config.internalUrl,
    sessions,
    transport,
    log,
    metrics,
    deliverIfConnected: (envelope) => {
      const recipient = clients.get(envelope.to);
      return recipient ? deliverLocal(recipient, envelope) : undefined;
    },
    deliverOrHold: (envelope, acked) => deliverOrHold(envelope, acked),
    settle: (envelope, outcome) => settle(envelope, outcome),
  });

  // ---- frames to clients -------------------------------------------------------------------------------------

  function send(client: Client, frame: ServerFrame): boolean {
    if (client.state === 'closed') return false;
    return client.conn.write(JSON.stringify(frame));
  }

  /** The hot frames are built as text: the same bytes as JSON.stringify of the frame, without the object. */
  function sendAck(client: Client, id: string): void {
    metrics.hot.acks += 1;
    if (client.state !== 'closed') client.conn.write(`{"type":"ack","id":${JSON.stringify(id)}}`);
  }

  function sendError(client: Client, code: FrameErrorCode, message: string, id?: string): void {
    metrics.errors.inc({ code });
    send(client, id === undefined ? { type: 'error', code, message } : { type: 'error', code, message, id });
  }

  function closeClient(client: Client, reason: CloseReason): void {
    if (client.state === 'closed') return;
    try {
      client.conn.close(CLOSE_CODES[reason], reason);
    } catch (error) {
      log.warn({ userId: client.userId, err: String(error) }, 'connection close failed');
    }
  }

  const ERROR_TEXT: Record<FrameErrorCode, string> = {
    INVALID_MESSAGE: 'invalid message',
    MESSAGE_TOO_LARGE: 'message too large',
    FORBIDDEN_SENDER: 'from must be your own userId',
    PEER_UNAVAILABLE: 'recipient is not connected',
    EXPIRED: 'recipient did not connect in time',
    QUEUE_FULL: 'recipient queue is full',
    RATE_LIMITED: 'rate limit exceeded',
    RELAY_FAILED: 'recipient node did not answer',
  };

  /**
   * Reports a message's final outcome to its sender's connection. A message with an id gets exactly one ack or
   * error frame carrying it. A message without id gets no ack, but a failure still gets an error frame (without
   * id), so nothing fails silently.
   */
  function settle(envelope: Envelope, outcome: Outcome): void {
    if (envelope.id === undefined && outcome === 'delivered') return;
    const origin = envelope.origin;
    if (origin.kind === 'local') {
      const sender = clientsByCid.get(origin.cid);
      if (sender && envelope.id !== undefined) sender.unsettled -= 1;
      if (!sender || sender.state !== 'open') return;
      if (outcome === 'delivered') {
        sendAck(sender, envelope.id as string);
      } else {
        sendError(sender, outcome, ERROR_TEXT[outcome], envelope.id);
      }
      return;
    }
    const report: OutcomeReport = { userId: envelope.from, cid: origin.cid, result: outcome };
    if (envelope.id !== undefined) report.id = envelope.id;
    router.report(origin.replyTo, report);
  }

  function writeMessage(recipient: Client, envelope: Envelope): boolean {
    if (recipient.state === 'closed') return false;
    const head = `{"type":"message","from":${JSON.stringify(envelope.from)},"to":${JSON.stringify(envelope.to)},"content":${JSON.stringify(envelope.content)}`;
    return recipient.conn.write(envelope.id === undefined ? `${head}}` : `${head},"id":${JSON.stringify(envelope.id)}}`);
  }

  /** Hands a message to a connection here; returns its outcome. */
  function deliverLocal(recipient: Client, envelope: Envelope): Outcome {
    if (!writeMessage(recipient, envelope)) return 'PEER_UNAVAILABLE';
    metrics.hot.relayedLocal += 1;
    return 'delivered';
  }

  /**
   * For a recipient whose session is on this node: delivers to its connection, or holds the message until it
   * connects. A session already acked with no connection here (and none opening) is stale: its connection is gone.
   */
  function deliverOrHold(envelope: Envelope, acked: boolean): 'delivered' | 'pending' | FrameErrorCode {
    const recipient = clients.get(envelope.to);
    if (recipient) return deliverLocal(recipient, envelope);
    if (closed) return 'RELAY_FAILED';
    if (acked && !pending.has(envelope.to) && !handshaking(envelope.to)) return 'PEER_UNAVAILABLE';
    return pending.add(envelope) === 'held' ? 'pending' : 'QUEUE_FULL';
  }

  function handshaking(userId: string): boolean {
    for (const client of handshakes) if (client.userId === userId) return true;
    return false;
  }

  // ---- client connections -------------------------------------------------------------------------------------

  function isClosed(client: Client): boolean {
    return client.state === 'closed';
  }

  function onConnection(conn: ClientConnection): void {
    const client: Client = {
      cid: randomId(),
      conn,
      userId: '',
      key: '',
      state: 'handshaking',
      early: [],
      bucket: new TokenBucket(config.rateMessagesPerSecond, config.rateBurst),
      bytes: new TokenBucket(config.rateBytesPerSecond, bytesBurst),
      lastActivity: Date.now(),
      openedAt: Date.now(),
      replaced: false,
      nextReassertAt: 0,
      unsettled: 0,
      reasserting: false,
    };
    // The first client frame can arrive in the same tick as the connection: listeners go on first.
    const onData = (text: string): void => {
      client.lastActivity = Date.now();
      try {
        if (client.state === 'handshaking') {
          client.early.push(text);
          if (client.early.length > Math.max(config.rateBurst, 100)) closeClient(client, 'protocol_violation');
        } else if (client.state === 'open') {
          onFrame(client, text);
        }
      } catch (error) {
        log.error({ userId: client.userId, err: String(error) }, 'frame handler failed');
      }
    };
    conn.listen(onData, () => {
      try {
        onClose(client);
      } catch (error) {
        log.error({ userId: client.userId, err: String(error) }, 'close handler failed');
      }
    });
    handshakes.add(client);
    handshake(client).catch((error: unknown) => {
      log.error({ userId: client.userId, err: String(error) }, 'handshake failed');
      rejectHandshake(client, 'store_unavailable');
    });
  }

  function rejectHandshake(client: Client, reason: CloseReason): void {
    metrics.handshakes.inc({ result: reason });
    handshakes.delete(client);
    if (reason !== 'node_shutdown') log.info({ userId: client.userId || undefined, reason }, 'handshake rejected');
    closeClient(client, reason);
  }

  async function handshake(client: Client): Promise<void> {
    if (draining || closed) return rejectHandshake(client, 'node_shutdown');
    const query = new URL(client.conn.url, 'http://node.invalid').searchParams;
    if (query.has(ORIGIN_DENIED_PARAM)) return rejectHandshake(client, 'origin_not_allowed');
    // handshakes already holds this one.
    if (config.maxConnections > 0 && clients.size + handshakes.size > config.maxConnections) {
      return rejectHandshake(client, 'node_full');
    }
    const userId = query.get('userId') ?? '';
    const key = query.get('listeningKey') ?? query.get('token') ?? '';
    client.userId = isValidUserId(userId) ? userId : '';
    if (!client.userId || !key) return rejectHandshake(client, 'invalid_credentials');
    client.key = key;

    let record: SessionRecord | undefined;
    try {
      record = await sessions.get(userId);
    } catch (error) {
      log.warn({ userId, err: String(error) }, 'session lookup failed');
      return rejectHandshake(client, 'store_unavailable');
    }
    if (isClosed(client)) return void handshakes.delete(client);
    if (!record || !secretsEqual(record.listeningKey, key)) return rejectHandshake(client, 'invalid_credentials');
    if (record.nodeId !== nodeId) return rejectHandshake(client, 'wrong_node');
    for (const other of handshakes) {
      if (other !== client && other.userId === userId && other.record !== undefined && secretsEqual(other.key, key)) {
        return rejectHandshake(client, 'key_already_used');
      }
    }
    const existing = clients.get(userId);
    if (existing) {
      if (secretsEqual(existing.key, key)) return rejectHandshake(client, 'key_already_used');
      // A newer /connect for this user landed here again: the older connection was replaced.
      existing.replaced = true;
      closeClient(existing, 'session_replaced');
    } else if (record.acked) {
      return rejectHandshake(client, 'key_already_used');
    }
    if (draining || closed) return rejectHandshake(client, 'node_shutdown');

    // Mark the key as taken before the write, so a racing second connection with the same key is refused.
    const acked: SessionRecord = { ...record, acked: true };
    client.record = acked;
    try {
      await sessions.put(acked, config.sessionTtlSeconds);
    } catch (error) {
      client.record = undefined;
      log.warn({ userId, err: String(error) }, 'session ack write failed');
      return rejectHandshake(client, 'store_unavailable');
    }
    handshakes.delete(client);
    if (isClosed(client)) {
      // Closed while the ack was written: the session it acked goes with it.
      await sessions.deleteIfMatches(userId, key).catch(() => undefined);
      return;
    }
    if (client.replaced) return rejectHandshake(client, 'session_replaced');
    if (draining || closed) return rejectHandshake(client, 'node_shutdown');

    const displaced = clients.get(userId);
    if (displaced && displaced !== client) {
      displaced.replaced = true;
      closeClient(displaced, 'session_replaced');
      clients.delete(userId);
    }
    // Welcome, pending flush and registration happen in one synchronous block: nothing can slip between them.
    client.state = 'open';
    clients.set(userId, client);
    clientsByCid.set(client.cid, client);
    keeper.schedule(client);
    metrics.handshakes.inc({ result: 'accepted' });
    send(client, { type: 'welcome', userId, nodeId });
    log.debug({ userId }, 'client connected');
    for (const envelope of pending.take(userId)) {
      settle(envelope, deliverLocal(client, envelope));
    }
    const early = client.early.splice(0);
    for (const text of early) {
      if (client.state !== 'open') break;
      onFrame(client, text);
    }
  }

  function onClose(client: Client): void {
    const wasOpen = client.state === 'open';
    client.state = 'closed';
    client.early = [];
    if (clients.get(client.userId) === client) clients.delete(client.userId);
    clientsByCid.delete(client.cid);
    if (wasOpen) log.debug({ userId: client.userId }, 'client disconnected');
    // A session this connection acked goes with it, unless a newer session took its place (deleteIfMatches).
    if (client.record && !handshakes.has(client)) {
      const deletion = sessions.deleteIfMatches(client.userId, client.key).catch((error: unknown) => {
        log.warn({ userId: client.userId, err: String(error) }, 'session delete failed');
      });
      sessionDeletes.add(deletion);
      void deletion.finally(() => sessionDeletes.delete(deletion));
    }
  }

  function onFrame(client: Client, text: string): void {
    const size = Buffer.byteLength(text, 'utf8');
    // Oversized frames are charged too, so a flood of them is rate limited like any other.
    const now = Date.now();
    let rate = client.bucket.take(now);
    if (rate === 'ok') rate = client.bytes.take(now, size);
    if (rate === 'ok' && size > config.maxMessageBytes) {
      sendError(client, 'MESSAGE_TOO_LARGE', `frame exceeds ${String(config.maxMessageBytes)} bytes`);
      return;
    }
    const parsed = size > config.maxMessageBytes ? undefined : parseClientFrame(text);
    const id = parsed === undefined ? undefined : parsed.ok ? parsed.value.id : parsed.id;
    if (rate !== 'ok' || parsed === undefined) {
      sendError(client, 'RATE_LIMITED', ERROR_TEXT.RATE_LIMITED, id);
      if (rate === 'abusive') {
        log.warn({ userId: client.userId }, 'closing connection far over its rate limit');
        closeClient(client, 'protocol_violation');
      }
      return;
    }
    if (!parsed.ok) {
      sendError(client, 'INVALID_MESSAGE', parsed.message, parsed.id);
      return;
    }
    const frame = parsed.value;
    if (frame.type === 'ping') {
      send(client, frame.id === undefined ? { type: 'pong' } : { type: 'pong', id: frame.id });
      return;
    }
    if (frame.from !== undefined && frame.from !== client.userId) {
      sendError(client, 'FORBIDDEN_SENDER', ERROR_TEXT.FORBIDDEN_SENDER, frame.id);
      return;
    }
    const envelope: Envelope = {
      from: client.userId,
      to: frame.to,
      content: frame.content,
      origin: { kind: 'local', cid: client.cid },
      size: text.length,
    };
    if (frame.id !== undefined) {
      envelope.id = frame.id;
      client.unsettled += 1;
    }
    router.route(envelope);
  }

  /** Closes connections that went silent (no frame, SDK pings included) and handshakes stuck on the store. */
  function sweepIdle(): void {
    const now = Date.now();
    for (const client of handshakes) {
      if (client.state === 'handshaking' && now - client.openedAt > HANDSHAKE_DEADLINE_MS) {
        log.warn({ userId: client.userId || undefined }, 'handshake timed out');
        rejectHandshake(client, 'store_unavailable');
      }
    }
    if (config.idleTimeoutSeconds <= 0) return;
    const horizon = now - config.idleTimeoutSeconds * 1000;
    for (const client of clients.values()) {
      if (client.state === 'open' && client.lastActivity < horizon) {
        log.info({ userId: client.userId }, 'closing idle connection');
        closeClient(client, 'idle_timeout');
      }
    }
  }

  /**
   * Browsers send Origin on every SockJS transport request; sockjs hides it from the connection (its header
   * whitelist), so the request that opens a session is marked here and refused in the handshake with 4505.
   */
  function markDisallowedOrigin(req: IncomingMessage, prefix: string): void {
    const url = req.url ?? '';
    if (!url.startsWith(`${prefix}/`)) return;
    const origin = req.headers.origin;
    if (originAllowed(config.allowedOrigins, origin)) return;
    req.url = `${url}${url.includes('?') ? '&' : '?'}${ORIGIN_DENIED_PARAM}=1`;
  }

  // ---- registry -----------------------------------------------------------------------------------------------

  function onRegistryEvent(event: RegistryEvent): void {
    try {
      router.onRegistryEvent(event);
    } catch (error) {
      log.error({ err: String(error) }, 'registry event handling failed');
    }
  }

  function nodeRecord(state: NodeRecord['state']): NodeRecord {
    return {
      nodeId,
      listeningAddress: config.publicUrl,
      internalAddress: config.internalUrl,
      state,
      startedAt: registration?.record.startedAt ?? new Date().toISOString(),
      version,
    };
  }

  async function publishLoad(force = false): Promise<void> {
    if (!registration || registration.state === 'revoked') return;
    const connections = clients.size;
    const held = pending.size;
    const signature = `${String(connections)}/${String(held)}`;
    if (!force && signature === lastLoad) return;
    lastLoad = signature;
    try {
      await registration.putLoad({
        connections,
        pending: held,
        updatedAt: new Date().toISOString(),
        ...(config.maxConnections > 0 ? { maxConnections: config.maxConnections } : {}),
      });
    } catch (error) {
      lastLoad = '';
      log.warn({ err: String(error) }, 'load update failed');
    }
  }

  function every(ms: number, fn: () => void): void {
    const timer = setInterval(() => {
      try {
        fn();
      } catch (error) {
        log.error({ err: String(error) }, 'periodic task failed');
      }
    }, ms);
    timer.unref();
    timers.add(timer);
  }

  function stopTimers(): void {
    for (const timer of timers) clearInterval(timer);
    timers.clear();
    keeper.stop();
  }

  // ---- internal API handlers ----------------------------------------------------------------------------------

  async function handleDeliver(request: DeliverRequest): Promise<DeliverResult[]> {
    const results: DeliverResult[] = new Array<DeliverResult>(request.messages.length);
    const byRecipient = new Map<string, number[]>();
    request.messages.forEach((m, i) => {
      const list = byRecipient.get(m.to);
      if (list) list.push(i);
      else byRecipient.set(m.to, [i]);
    });
    await Promise.all(
      [...byRecipient].map(async ([to, indexes]) => {
        const location: Location = clients.has(to) || pending.has(to) ? { kind: 'self', acked: false } : await router.locate(to);
        // Decided synchronously from here on, so a recipient connecting meanwhile gets them in order.
        for (const i of indexes) {
          const m = request.messages[i] as ForwardedMessage;
          const envelope: Envelope = {
            from: m.from,
            to: m.to,
            content: m.content,
            origin: { kind: 'remote', replyTo: request.replyTo, cid: m.cid },
            size: 0,
          };
          if (m.id !== undefined) envelope.id = m.id;
          let outcome: 'delivered' | 'pending' | FrameErrorCode;
          if (location.kind === 'self') outcome = deliverOrHold(envelope, location.acked);
          else if (clients.has(to)) outcome = deliverOrHold(envelope, false); // connected while we looked it up
          else outcome = location.kind === 'unknown' ? 'RELAY_FAILED' : 'PEER_UNAVAILABLE';
          results[i] = outcome === 'delivered' || outcome === 'pending' ? { status: outcome } : { status: 'error', code: outcome };
        }
      }),
    );
    return results;
  }

  function handleOutcomes(outcomes: OutcomeReport[]): number {
    let accepted = 0;
    for (const o of outcomes) {
      const sender = clientsByCid.get(o.cid);
      if (!sender || sender.userId !== o.userId || sender.state !== 'open') continue;
      accepted += 1;
      if (o.result === 'delivered') {
        if (o.id === undefined) continue;
        sendAck(sender, o.id);
      } else {
        sendError(sender, o.result, ERROR_TEXT[o.result], o.id);
      }
    }
    return accepted;
  }

  function replace(userId: string, key: string): boolean {
    let closedAny = false;
    const client = clients.get(userId);
    if (client && secretsEqual(client.key, key)) {
      client.replaced = true;
      closeClient(client, 'session_replaced');
      closedAny = true;
    }
    for (const other of handshakes) {
      if (other.userId === userId && secretsEqual(other.key, key)) {
        other.replaced = true;
        closedAny = true;
      }
    }
    if (closedAny) log.info({ userId }, 'connection replaced by a newer session');
    return closedAny;
  }

  function readiness(): Readiness {
    const registered = registration?.state === 'registered';
    const synced = watch?.synced === true;
    const nodes = router.members.size;
    return { ready: registered && synced && !draining && !closed, registered, synced, draining, nodes };
  }

  // ---- lifecycle ----------------------------------------------------------------------------------------------

  function idle(): boolean {
    return clients.size === 0 && handshakes.size === 0 && router.idle;
  }

  async function runDrain(): Promise<void> {
    draining = true;
    metrics.draining.set(1);
    log.info({ connections: clients.size, timeoutSeconds: config.drainTimeoutSeconds }, 'drain started');
    if (registration && registration.state !== 'revoked') {
      await registration.update(nodeRecord('draining')).catch((error: unknown) => {
        log.warn({ err: String(error) }, 'could not publish draining state');
      });
    }
    const deadline = Date.now() + config.drainTimeoutSeconds * 1000;
    await closePaced<Client>({
      open: () => clients.values(),
      isOpen: (client) => client.state === 'open',
      // Its own messages are on their way: close it once they are acked or failed, so it hears their fate.
      // Clients that connect meanwhile are refused with 4000 by handshake().
      ready: (client, elapsedMs) => client.unsettled === 0 || elapsedMs >= DRAIN_SETTLE_WAIT_MS,
      close: (client) => closeClient(client, 'node_shutdown'),
      ratePerSecond: config.drainRatePerSecond,
      deadline,
      done: () => closed || idle(),
    });
    for (const client of [...clients.values()]) closeClient(client, 'node_shutdown');
    for (const envelope of pending.takeAll()) settle(envelope, 'RELAY_FAILED');
    await closesSettled(DRAIN_CLOSE_WAIT_MS);
    await finish();
    log.info({ timedOut: Date.now() >= deadline }, 'drain finished');
  }

  /**
   * A closed client's session delete starts on its close event, after the close frame went out. The drain waits
   * (bounded) for those events and deletes, so the owner can close the session store right after the drain without
   * leaving drained users' sessions behind until their TTL.
   */
  async function closesSettled(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (clients.size > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
    const left = Math.max(0, until - Date.now());
    await Promise.race([Promise.allSettled([...sessionDeletes]), new Promise((resolve) => setTimeout(resolve, left).unref())]);
  }

  async function finish(): Promise<void> {
    stopTimers();
    wsTransport?.close();
    const reg = registration;
    if (reg && reg.state !== 'revoked') {
      await reg.revoke().catch((error: unknown) => log.warn({ err: String(error) }, 'registration revoke failed'));
    }
    metrics.leaseState.set(0);
    const w = watch;
    watch = undefined;
    if (w) await w.close().catch(() => undefined);
  }

  const internalApi = createInternalApi({
    nodeId,
    clusterSecret: config.clusterSecret,
    bodyLimit,
    metrics: metrics.registry,
    log,
    handlers: {
      replace,
      drain: () => void api.drain(),
      deliver: handleDeliver,
      outcomes: handleOutcomes,
      readiness,
    },
  });

  let wsTransport: WsTransport | undefined;
  function acceptConnection(conn: ClientConnection): void {
    try {
      onConnection(conn);
    } catch (error) {
      log.error({ err: String(error) }, 'connection setup failed');
    }
  }

  const api: RelayNode = {
    nodeId,
    drained,
    get stats() {
      return { connections: clients.size, pending: pending.size };
    },

    installSockJs(server: Server): void {
      const prefix = sockJsPrefix(config.publicUrl);
      const sock = sockjs.createServer({
        prefix,
        // Passed through to faye-websocket; @types/sockjs does not list it.
        ...({ faye_server_options: { maxLength: transportFrameLimit } } as object),
        log: (severity: string, message: string) => {
          if (severity === 'error') log.warn({ detail: message }, 'sockjs error');
        },
      });
      sock.on('connection', (conn: Connection | null) => {
        // sockjs emits null for a connection that died during its opening request.
        if (!conn) return;
        acceptConnection(fromSockJs(conn));
      });
      sock.installHandlers(server);
      // Both websocket transports go to `ws`; sockjs keeps the HTTP fallbacks and /info.
      const ws = createWsTransport({ prefix, maxPayload: transportFrameLimit, onConnection: acceptConnection });
      wsTransport = ws;
      const sockjsUpgrade = server.listeners('upgrade') as ((req: IncomingMessage, socket: Duplex, head: Buffer) => void)[];
      server.removeAllListeners('upgrade');
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (ws.handleUpgrade(req, socket, head)) return;
        for (const listener of sockjsUpgrade) listener.call(server, req, socket, head);
      });
      // Prepended after sockjs took over the listeners, so these run before it on every request and upgrade.
      if (!config.allowedOrigins.includes('*')) {
        server.prependListener('request', (req: IncomingMessage) => markDisallowedOrigin(req, prefix));
        server.prependListener('upgrade', (req: IncomingMessage) => markDisallowedOrigin(req, prefix));
      }
    },

    handleInternal(req: IncomingMessage, res: ServerResponse): boolean {
      return internalApi(req, res);
    },

    async start(): Promise<void> {
      if (registration) return;
      registration = await registry.registerNode(nodeRecord('active'));
      metrics.leaseState.set(1);
      registration.on('lost', () => {
        metrics.leaseState.set(0);
        log.warn({}, 'registry lease lost; re-registering');
      });
      registration.on('registered', () => {
        metrics.leaseState.set(1);
        lastLoad = '';
        log.info({}, 'registered again after lease loss');
      });
      try {
        watch = await registry.watch(onRegistryEvent);
      } catch (error) {
        await registration.revoke().catch(() => undefined);
        throw error;
      }
      await publishLoad(true);
      every(LOAD_INTERVAL_MS, () => void publishLoad());
      every(keeper.tickMs, () => keeper.tick(clients.values()));
      every(1000, sweepIdle);
      log.info({ listeningAddress: config.publicUrl, internalAddress: config.internalUrl }, 'node registered');
    },

    drain(): Promise<void> {
      if (!drainPromise) {
        drainPromise = runDrain()
          .catch((error: unknown) => log.error({ err: String(error) }, 'drain failed'))
          .finally(() => resolveDrained());
      }
      return drainPromise;
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      draining = true;
      for (const client of [...clients.values(), ...handshakes]) closeClient(client, 'node_shutdown');
      pending.close();
      router.stop();
      await finish();
    },

    metricsText(): Promise<string> {
      return metrics.registry.metrics();
    },
  };
  return api;
}
