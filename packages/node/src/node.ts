import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import {
  instrumentRegistry,
  instrumentSessionStore,
  type Logger,
  type NodeConfig,
  type NodeRegistration,
  type PeerTransport,
  type Registry,
  type RegistryWatch,
  type SessionStore,
  type RoomStore,
  type NodeIdentity,
} from '@messaging-server/core';
import type { NodeId, NodeRecord } from '@messaging-server/protocol';
import type { ClientSession } from './client-session.js';
import { sessionLimits } from './session-limits.js';
import { ConnectionTable } from './connection-table.js';
import { Connections } from './connections.js';
import { createSettle, Delivery } from './delivery.js';
import { Departures } from './departures.js';
import type { Envelope } from './envelope.js';
import { drain } from './drain.js';
import { createFrameHandler } from './frame-handler.js';
import { Handshaker } from './handshake.js';
import { HeldBudget } from './held-budget.js';
import { createInternalApi, type Readiness } from './internal-api.js';
import { internalBodyLimit, internalLimits } from './internal-server.js';
import { LoadReporter } from './load-reporter.js';
import { localDelivery } from './local-delivery.js';
import { createNodeMetrics, type NodeMetrics } from './metrics.js';
import { PendingQueues } from './pending-queues.js';
import { createPeerRoutes, OutcomeLinks, PeerLinks, peerKeyLookup } from './peer/index.js';
import { Router } from './router.js';
import { roomHooks, wireRooms, type Rooms } from './rooms-wiring.js';
import { registerRoomMetrics } from './room-metrics.js';
import { SenderCheck } from './sender-check.js';
import { SessionKeeper } from './session-keeper.js';
import { secretsEqual } from './secure-compare.js';
import { guardPublicServer, publicLimits, type PublicLimits } from './public-guard.js';
import { createSockJsEndpoint, transportFrameLimit } from './sockjs-endpoint.js';
import type { WsTransport } from './ws-transport.js';

export interface NodeDeps {
  config: NodeConfig;
  registry: Registry;
  sessions: SessionStore;
  rooms?: RoomStore; // v1.2: room records (memcached beside the sessions); absent: in memory (one node, tests)
  transport: PeerTransport;
  logger: Logger;
  version?: string;
  publicLimits?: Partial<PublicLimits>; // bounds on every public request (public-guard.ts); tests shorten the times
  internalLimits?: Partial<PublicLimits>; // the same bounds on the internal port (internal-server.ts)
  identity?: NodeIdentity; // node-identity.ts: registered here, `transport` signs with it, the internal port checks with it
}

/** What a public server needs besides the node: the limits the guard enforces. */
export function nodePublicLimits(deps: Pick<NodeDeps, 'config' | 'publicLimits'>): PublicLimits {
  return publicLimits(transportFrameLimit(deps.config.maxMessageBytes), deps.publicLimits);
}

/** The internal port's limits: the public port's times and header bounds, the internal API's body cap. */
export function nodeInternalLimits(deps: Pick<NodeDeps, 'config' | 'internalLimits'>): PublicLimits {
  return internalLimits(internalBodyLimit(deps.config.maxMessageBytes), deps.internalLimits);
}

export interface RelayNode {
  readonly nodeId: NodeId;
  /**
   * Puts the public port's guard on an http.Server (made by createPublicServer), with the SockJS endpoint behind it at
   * the pathname of config.publicUrl (default /ws): its two websocket transports served by `ws`, every HTTP fallback
   * and /info by sockjs. Requests outside that path go to `outside` (default 404), upgrades there are refused.
   */
  installSockJs(server: Server, outside?: (req: IncomingMessage, res: ServerResponse) => void): void;
  /** Node http handler for the internal API (/internal/...), /healthz, /readyz, /metrics. Returns false if the path is not its own. */
  handleInternal(req: IncomingMessage, res: ServerResponse): boolean;
  /** Registers nodes/<id> and load/<id> and starts watching the registry. Rethrows ALREADY_REGISTERED. */
  start(): Promise<void>;
  /**
   * The contract's drain; resolves once every client is closed, what was held for other nodes' senders found its
   * users or expired, and the last outcomes left (or the drain timeout passed), with its keys revoked.
   */
  drain(): Promise<void>;
  /** Hard stop: closes connections without draining, revokes the registration. */
  close(): Promise<void>;
  /** Resolves when a drain (from drain(), POST /internal/v1/drain) has finished; the CLI exits then. */
  readonly drained: Promise<void>;
  readonly stats: { connections: number; pending: number };
  /** The prom-client text exposition of this node's metrics. */
  metricsText(): Promise<string>;
}

const LOAD_INTERVAL_MS = 1000;
const SWEEP_INTERVAL_MS = 1000;

/** The node's parts, wired together; see each module for what it owns. */
interface Parts {
  metrics: NodeMetrics;
  registry: Registry;
  sessions: SessionStore;
  table: ConnectionTable;
  pending: PendingQueues;
  delivery: Delivery;
  router: Router;
  keeper: SessionKeeper<ClientSession>;
  departures: Departures | undefined;
  handshaker: Handshaker;
  connections: Connections;
  load: LoadReporter;
  rooms: Rooms;
}

/** Where the node is in its life, shared by the parts that must refuse work once it stops. */
interface Lifecycle {
  registration: NodeRegistration | undefined;
  watch: RegistryWatch | undefined;
  draining: boolean;
  closed: boolean;
}

function wireParts(deps: NodeDeps, life: Lifecycle, log: Logger): Parts {
  const { config } = deps;
  const nodeId = config.nodeId;
  const table = new ConnectionTable();
  const departures = config.resumeWindowMs > 0 ? new Departures(config.resumeWindowMs, Math.max(config.maxConnections, 100_000)) : undefined;
  const held = new HeldBudget({
    totalBytes: config.pendingMaxBytes,
    perSenderBytes: config.pendingMaxBytesPerSender,
    perRecipientBytes: config.pendingMaxBytesPerRecipient,
  });
  // Made in the order they need each other: outcomes out, then settling, the pending queue, delivery, the router.
  const outcomes = new OutcomeLinks({ transport: deps.transport, log });
  const report = outcomes.report.bind(outcomes);
  const settle = createSettle(table, report);
  const pending = new PendingQueues(config.pendingMax, held, config.pendingTtlMs, (envelope) => settle(envelope, 'EXPIRED'));
  // Read at each scrape, long after the router below exists.
  const sources = { connections: () => table.openCount, pending: () => pending.size, held: (): number => router.held, unconfirmed: () => table.unconfirmedCount };
  const metrics = deps.version === undefined ? createNodeMetrics(sources, nodeId) : createNodeMetrics(sources, nodeId, deps.version);
  // Every etcd and memcached call of this node is timed at the contract boundary (msg_etcd_*, msg_memcached_*).
  const registry = instrumentRegistry(deps.registry, metrics.etcd);
  const sessions = instrumentSessionStore(deps.sessions, metrics.memcached);
  const countLocal = (): void => void (metrics.hot.relayedLocal += 1);
  const delivery = new Delivery({ table, pending, departures, closed: () => life.closed, countLocal, settle, report, budget: held });
  const peerDeps = { nodeId, replyTo: config.internalUrl, transport: deps.transport, log, metrics, outcomes };
  const router: Router = new Router({
    nodeId,
    sessions,
    peer: (answers) => new PeerLinks(peerDeps, answers),
    log,
    metrics,
    resumeWindowMs: config.resumeWindowMs,
    holdMaxPerRecipient: config.pendingMax,
    holdBudget: held,
    deliverIfConnected: (envelope) => delivery.deliverIfConnected(envelope),
    deliverOrHold: (envelope, acked) => delivery.deliverOrHold(envelope, acked),
    isHereOrComing: (userId) => table.has(userId) || table.isHandshaking(userId) || pending.has(userId),
    movedAt: (userId) => departures?.movedAt(userId),
    settle,
  });
  const keeper = new SessionKeeper<ClientSession>({
    sessions,
    nodeId,
    sessionTtlSeconds: config.sessionTtlSeconds,
    log,
    onReplaced: (session) => session.replace(),
  });
  const route = (envelope: Envelope): void => router.route(envelope);
  const rooms = wireRooms({ ...deps, sessions, held, draining: () => life.draining }, table, { nodes: () => router.members, version: () => router.membersVersion }, log);
  const confirm = (session: ClientSession, seq: number): void => {
    metrics.hot.receipts += 1;
    delivery.confirmed(session, seq);
  };
  const onFrame = createFrameHandler({ maxMessageBytes: config.maxMessageBytes, log, route, confirm, room: (session, frame) => rooms.members.onFrame(session, frame) });
  let connections!: Connections;
  const handshaker = new Handshaker({
    nodeId,
    sessions,
    table,
    maxConnections: config.maxConnections,
    sessionTtlSeconds: config.sessionTtlSeconds,
    maxUnconfirmed: config.maxUnconfirmed,
    accepting: () => !life.draining && !life.closed,
    log,
    count: (result) => metrics.handshakes.inc({ result }),
    welcome: (session) => connections.welcome(session),
  });
  connections = new Connections({
    nodeId,
    table,
    handshaker,
    sessions,
    limits: sessionLimits(config),
    counters: {
      ack: () => (metrics.hot.acks += 1),
      error: (code) => metrics.errors.inc({ code }),
      closed: (reason) => metrics.closes.inc({ reason }),
    },
    maxEarlyFrames: Math.max(config.rateBurst, 100),
    idleTimeoutSeconds: config.idleTimeoutSeconds,
    departures,
    resumeWindowMs: config.resumeWindowMs,
    log,
    onFrame,
    connectionLeft: (session, fate) => delivery.connectionLeft(session, fate).forEach((e) => router.holdOr(e, 'PEER_UNAVAILABLE', departures?.movedAt(session.userId))),
    ...roomHooks(rooms),
    onWelcome: (session) => {
      keeper.schedule(session);
      delivery.flushPending(session);
      router.resumed(session.userId);
      rooms.members.resumed(session);
    },
  });
  const load = new LoadReporter(() => life.registration, sources, config.maxConnections, log);
  return { metrics, registry, sessions, table, pending, delivery, router, keeper, departures, handshaker, connections, load, rooms };
}

export function createNode(deps: NodeDeps): RelayNode {
  return new NodeRuntime(deps);
}

class NodeRuntime implements RelayNode {
  readonly nodeId: NodeId;
  readonly drained: Promise<void>;
  private readonly config: NodeConfig;
  private readonly log: Logger;
  private readonly version: string;
  private readonly life: Lifecycle = { registration: undefined, watch: undefined, draining: false, closed: false };
  private readonly parts: Parts;
  private readonly internalApi: (req: IncomingMessage, res: ServerResponse) => boolean;
  private readonly timers = new Set<NodeJS.Timeout>();
  private wsTransport: WsTransport | undefined;
  private drainPromise: Promise<void> | undefined;
  private resolveDrained!: () => void;

  constructor(private readonly deps: NodeDeps) {
    this.config = deps.config;
    this.nodeId = deps.config.nodeId;
    this.log = deps.logger.child({ nodeId: this.nodeId });
    this.version = deps.version ?? '0.0.0';
    this.drained = new Promise<void>((resolve) => (this.resolveDrained = resolve));
    this.parts = wireParts(deps, this.life, this.log);
    const { metrics, router } = this.parts;
    registerRoomMetrics(metrics.registry, this.parts.rooms);
    const senders = new SenderCheck(this.parts.sessions, this.log);
    deps.identity?.knowPeers(peerKeyLookup(router.members));
    this.internalApi = createInternalApi({
      nodeId: this.nodeId,
      clusterSecret: this.config.clusterSecret,
      clusterSecretPrevious: this.config.clusterSecretPrevious,
      identity: deps.identity,
      bodyLimit: internalBodyLimit(this.config.maxMessageBytes),
      metrics: metrics.registry,
      log: this.log,
      handlers: {
        replace: (userId, key) => this.replace(userId, key),
        drain: () => void this.drain(),
        peer: createPeerRoutes(localDelivery(this.parts, senders)),
        peerKey: (nodeId) => router.members.get(nodeId)?.identityKey,
        senderOn: (userId, nodeId) => senders.isOn(userId, nodeId),
        roomOp: (op) => this.parts.rooms.home.handle(op),
        roomFanout: (fanout) => this.parts.rooms.members.deliverRemote(fanout.room, fanout.to, fanout.frame),
        readiness: () => this.readiness(),
      },
    });
  }

  get stats(): { connections: number; pending: number } {
    return { connections: this.parts.table.openCount, pending: this.parts.pending.size };
  }

  installSockJs(server: Server, outside?: (req: IncomingMessage, res: ServerResponse) => void): void {
    const endpoint = createSockJsEndpoint({
      publicUrl: this.config.publicUrl,
      transportFrameLimit: transportFrameLimit(this.config.maxMessageBytes),
      allowedOrigins: this.config.allowedOrigins,
      log: this.log,
      onConnection: (conn) => this.parts.connections.accept(conn),
    });
    this.wsTransport = endpoint.ws;
    guardPublicServer(server, outside ? { ...endpoint, outside } : endpoint, nodePublicLimits(this.deps), this.log);
  }

  handleInternal(req: IncomingMessage, res: ServerResponse): boolean {
    return this.internalApi(req, res);
  }

  async start(): Promise<void> {
    if (this.life.registration) return;
    const { registry, metrics, load, keeper, table, router, handshaker, connections, departures } = this.parts;
    const registration = await registry.registerNode(this.nodeRecord('active'));
    this.life.registration = registration;
    metrics.leaseState.set(1);
    registration.on('lost', () => {
      metrics.leaseState.set(0);
      this.log.warn({}, 'registry lease lost; re-registering');
    });
    registration.on('registered', () => {
      metrics.leaseState.set(1);
      load.invalidate();
      this.log.info({}, 'registered again after lease loss');
    });
    try {
      // Membership only: the node never reads load/, which changes every second on every node.
      this.life.watch = await registry.watch(
        (event) => {
          try {
            router.onRegistryEvent(event);
          } catch (error) {
            this.log.error({ err: error }, 'registry event handling failed');
          }
        },
        { kind: 'node' },
      );
    } catch (error) {
      await registration.revoke().catch(() => undefined);
      throw error;
    }
    await load.publish(true);
    this.every(LOAD_INTERVAL_MS, () => void load.publish());
    this.every(keeper.tickMs, () => keeper.tick(table.open()));
    this.every(SWEEP_INTERVAL_MS, () => {
      const now = Date.now();
      handshaker.expireStuck(now);
      connections.closeIdle(now);
      departures?.sweep(now);
    });
    this.log.info({ listeningAddress: this.config.publicUrl, internalAddress: this.config.internalUrl }, 'node registered');
  }

  drain(): Promise<void> {
    this.drainPromise ??= this.runDrain()
      .catch((error: unknown) => this.log.error({ err: error }, 'drain failed'))
      .finally(() => this.resolveDrained());
    return this.drainPromise;
  }

  async close(): Promise<void> {
    if (this.life.closed) return;
    this.life.closed = true;
    this.life.draining = true;
    const { table, pending, router } = this.parts;
    for (const session of [...table.open(), ...table.handshakes()]) session.close('node_shutdown');
    pending.close();
    router.stop();
    await this.finish();
  }

  metricsText(): Promise<string> {
    return this.parts.metrics.registry.metrics();
  }

  private async runDrain(): Promise<void> {
    this.life.draining = true;
    const { metrics, table, pending, router, delivery, connections } = this.parts;
    metrics.draining.set(1);
    await drain({
      table,
      timeoutSeconds: this.config.drainTimeoutSeconds,
      ratePerSecond: this.config.drainRatePerSecond,
      log: this.log,
      announce: () => this.announceDraining(),
      // Held messages are not waited for here: the drain decides about them once every client is closed.
      idle: () => table.empty && router.settled,
      closed: () => this.life.closed,
      handOverPending: () => {
        // Every connection is closed by now: this node's own senders send their unanswered messages again from
        // their next node, so only what other nodes' senders wait for is kept.
        router.dropHeldOfLocalSenders();
        for (const envelope of pending.takeAll()) if (envelope.origin.kind === 'remote') router.holdOr(envelope, 'RELAY_FAILED');
      },
      held: () => router.held,
      sent: () => router.settled,
      expireHeld: () => router.expireHeld(),
      sessionWrites: () => connections.sessionWrites,
      finish: () => this.finish(),
    });
  }

  private async announceDraining(): Promise<void> {
    const registration = this.life.registration;
    if (!registration || registration.state === 'revoked') return;
    await registration.update(this.nodeRecord('draining')).catch((error: unknown) => {
      this.log.warn({ err: error }, 'could not publish draining state');
    });
  }

  /** Closes this node's connection holding the (old) key of a replaced session, and marks its handshakes. */
  private replace(userId: string, key: string): boolean {
    const { table } = this.parts;
    const targets = [table.get(userId), ...[...table.handshakes()].filter((session) => session.userId === userId)];
    let closedAny = false;
    for (const session of targets) {
      if (session && session.userId === userId && secretsEqual(session.key, key)) {
        session.replace();
        closedAny = true;
      }
    }
    if (closedAny) this.log.info({ userId }, 'connection replaced by a newer session');
    return closedAny;
  }

  private readiness(): Readiness {
    const registered = this.life.registration?.state === 'registered';
    const synced = this.life.watch?.synced === true;
    const draining = this.life.draining;
    return { ready: registered && synced && !draining && !this.life.closed, registered, synced, draining, nodes: this.parts.router.members.size };
  }

  private nodeRecord(state: NodeRecord['state']): NodeRecord {
    return {
      nodeId: this.nodeId,
      listeningAddress: this.config.publicUrl,
      internalAddress: this.config.internalUrl,
      state,
      startedAt: this.life.registration?.record.startedAt ?? new Date().toISOString(),
      version: this.version,
      ...(this.deps.identity ? { identityKey: this.deps.identity.publicKey } : {}),
    };
  }

  private every(ms: number, task: () => void): void {
    const timer = setInterval(() => {
      try {
        task();
      } catch (error) {
        this.log.error({ err: error }, 'periodic task failed');
      }
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  private async finish(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.clear();
    this.parts.keeper.stop();
    this.parts.rooms.home.stop(); // the rooms' sweep
    this.wsTransport?.close();
    const registration = this.life.registration;
    if (registration && registration.state !== 'revoked') {
      await registration.revoke().catch((error: unknown) => this.log.warn({ err: error }, 'registration revoke failed'));
    }
    this.parts.metrics.leaseState.set(0);
    const watch = this.life.watch;
    this.life.watch = undefined;
    if (watch) await watch.close().catch(() => undefined);
  }
}
