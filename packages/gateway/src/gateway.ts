import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Koa, { type Context, type Middleware } from 'koa';
import { Backoff, type ConnectResponse, type GatewayRecord, type Session } from '@messaging-server/protocol';
import {
  instrumentRegistry,
  instrumentSessionStore,
  originAllowed,
  type GatewayConfig,
  type GatewayRegistration,
  type Logger,
  type PeerTransport,
  type Registry,
  type RegistryEvent,
  type RegistryWatch,
  type SessionStore,
  type WindowCounter,
} from '@messaging-server/core';
import { HttpError, errorMiddleware } from './http-error.js';
import { parseConnectRequest } from './connect-body.js';
import { NodeView, type NodeViewOptions } from './node-view.js';
import { SessionAllocator } from './session-allocator.js';
import { GatewayMetrics } from './metrics.js';
import { StoreProbe } from './readiness.js';
import { createJwtAuthenticator, ensureJwtSupport, type ConnectAuthenticator } from './auth.js';
import { ClientIpResolver, ipLimitKey } from './client-ip.js';
import { IpRateLimiter } from './ip-rate-limiter.js';
import { SharedIpLimiter } from './shared-ip-limiter.js';
import { contentTypeOf, fallbackDemoPage, readFileIfExists, resolveInside } from './static-files.js';
import { iceServersFor } from './turn-credentials.js';

export interface GatewayDeps {
  config: Readonly<GatewayConfig>;
  registry: Registry;
  sessions: SessionStore;
  transport: PeerTransport;
  logger: Logger;
  version?: string;
  /** Demo page and browser bundle: `index.html` at GET /, any file at GET /static/<file>. */
  publicDir?: string;
  /** Default `gw-<hostname>-<port>`. */
  gatewayId?: string;
  /** Advertised in `gateways/<gatewayId>`. Default `http://<host or hostname>:<port>`. */
  address?: string;
  /** Overrides the JWT authenticator that `authJwtSecret`/`authJwksUrl` would turn on. */
  authenticator?: ConnectAuthenticator;
  /** Budget for the session store calls of one /connect and for the /readyz probe. Default 900 ms. */
  storeTimeoutMs?: number;
  /** Process default metrics on this gateway's registry (turn off when another registry already has them). Default true. */
  defaultMetrics?: boolean;
  nodeView?: NodeViewOptions;
  /** Counters shared by every gateway (memcached): the per-IP /connect limit then holds across them. */
  connectCounter?: WindowCounter;
}

export interface GatewayStartOptions {
  /** The port the app is served on, for the default gatewayId and address. Default `config.port`. */
  port?: number;
}

export interface Gateway {
  readonly app: Koa;
  /** Started, not closed, and the registry watch is live. (/readyz also requires the session store.) */
  readonly ready: boolean;
  readonly gatewayId: string | undefined;
  readonly view: NodeView;
  readonly metrics: GatewayMetrics;
  /** What GET /readyz answers: the reasons are `not_started`, `closing`, `registry_not_synced`, `session_store_unreachable`. */
  checkReadiness(): Promise<{ ready: boolean; reasons: string[] }>;
  /** Watches the registry (nodes/, load/) and registers `gateways/<gatewayId>`. Retries both in the background when the registry is unreachable. */
  start(options?: GatewayStartOptions): Promise<void>;
  /** Stops the watch and revokes the registration. Leaves registry, sessions and transport open (the caller owns them). */
  close(): Promise<void>;
}

const REQUEST_ID_PATTERN = /^[\w.:@-]{1,128}$/;
/** Start-up retries of the watch and the registration while etcd cannot be reached. */
const START_RETRY = { initialMs: 500, maxMs: 5000 } as const;

function requestIdMiddleware(logger: Logger): Middleware {
  return async (ctx, next) => {
    const given = ctx.get('x-request-id');
    const reqId = REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
    ctx.state['reqId'] = reqId;
    ctx.state['log'] = logger.child({ reqId });
    ctx.set('x-request-id', reqId);
    await next();
  };
}

/**
 * CORS for /connect from `MSG_ALLOWED_ORIGINS`: `*` answers any origin; a list reflects a listed Origin, and a
 * request from any other origin is refused outright (403), not merely hidden from the page: /connect has effects.
 */
function applyCors(ctx: Context, allowed: readonly string[]): void {
  ctx.set('access-control-expose-headers', 'x-request-id');
  if (allowed.includes('*')) {
    ctx.set('access-control-allow-origin', '*');
    return;
  }
  ctx.vary('origin');
  const origin = ctx.get('origin') || undefined;
  if (!originAllowed(allowed, origin)) throw new HttpError('ORIGIN_NOT_ALLOWED', 'origin is not allowed');
  if (origin !== undefined) ctx.set('access-control-allow-origin', origin);
}

class KoaGateway implements Gateway {
  readonly app = new Koa();
  readonly view: NodeView;
  readonly metrics: GatewayMetrics;
  private readonly allocator: SessionAllocator;
  private readonly storeProbe: StoreProbe;
  private readonly authenticator: ConnectAuthenticator | undefined;
  private readonly clientIp: ClientIpResolver;
  private readonly connectLimiter: IpRateLimiter | SharedIpLimiter | undefined;
  private readonly log: Logger;
  private readonly version: string;
  private readonly registry: Registry;
  private readonly sessions: SessionStore;
  private watch: RegistryWatch | undefined;
  private registration: GatewayRegistration | undefined;
  private started = false;
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private id: string | undefined;

  constructor(private readonly deps: GatewayDeps) {
    this.log = deps.logger;
    this.version = deps.version ?? '0.0.0';
    this.id = deps.gatewayId;
    this.view = new NodeView({
      ...deps.nodeView,
      nodeLeft: (nodeId, record, addressReleased) => {
        if (addressReleased) deps.transport.forget(record.internalAddress);
        this.log.info({ nodeId }, 'node left');
      },
    });
    this.metrics = new GatewayMetrics(
      { nodeCounts: () => this.view.countByState(), registrySynced: () => this.watch?.synced ?? false },
      deps.defaultMetrics === undefined ? { version: this.version } : { defaultMetrics: deps.defaultMetrics, version: this.version },
    );
    // Every etcd and memcached call of this gateway is timed at the contract boundary (msg_etcd_*, msg_memcached_*).
    this.registry = instrumentRegistry(deps.registry, this.metrics.etcd);
    this.sessions = instrumentSessionStore(deps.sessions, this.metrics.memcached);
    const storeTimeoutMs = deps.storeTimeoutMs ?? 900;
    const onStoreError = (): void => this.metrics.sessionStoreErrors.inc();
    this.allocator = new SessionAllocator({
      view: this.view,
      sessions: this.sessions,
      transport: deps.transport,
      policy: deps.config.sessionConflict,
      handshakeTimeoutSeconds: deps.config.handshakeTimeoutSeconds,
      storeBudgetMs: storeTimeoutMs,
      onStoreError,
      onAllocated: (nodeId) => this.metrics.allocations.inc({ node_id: nodeId }),
    });
    this.storeProbe = new StoreProbe(this.sessions, { timeoutMs: storeTimeoutMs, cacheMs: 1000, onError: onStoreError });
    this.authenticator = deps.authenticator ?? this.jwtAuthenticatorFromConfig();
    this.clientIp = new ClientIpResolver(deps.config.trustedProxies ?? []);
    const perMinute = deps.config.connectRatePerIpPerMinute ?? 0;
    const counter = deps.connectCounter;
    const onFallback = (): void => this.metrics.connectLimitFallbacks.inc();
    this.connectLimiter = !(perMinute > 0) ? undefined : counter ? new SharedIpLimiter({ perMinute, counter, onFallback }) : new IpRateLimiter(perMinute);
    this.app.on('error', (error: unknown) => this.log.warn({ err: error }, 'http error'));
    this.app.use(requestIdMiddleware(this.log));
    this.app.use(errorMiddleware(this.log));
    this.app.use((ctx) => this.route(ctx));
  }

  get ready(): boolean {
    return this.started && !this.closed && (this.watch?.synced ?? false);
  }

  get gatewayId(): string | undefined {
    return this.id;
  }

  async start(options: GatewayStartOptions = {}): Promise<void> {
    if (this.started) return;
    if (this.deps.authenticator === undefined && this.authenticator !== undefined) await ensureJwtSupport();
    this.started = true;
    const port = options.port ?? this.deps.config.port;
    this.id ??= `gw-${hostname()}-${String(port)}`;
    const host = this.deps.config.host;
    const wildcard = host === '0.0.0.0' || host === '::' || host === '';
    const record: GatewayRecord = {
      gatewayId: this.id,
      address: this.deps.address ?? `http://${wildcard ? hostname() : host}:${String(port)}`,
      startedAt: new Date().toISOString(),
      version: this.version,
    };
    await Promise.all([this.startWatch(new Backoff(START_RETRY)), this.register(record, new Backoff(START_RETRY))]);
    this.log.info({ gatewayId: this.id, synced: this.ready, nodes: this.view.nodes.size }, 'gateway started');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const results = await Promise.allSettled([this.watch?.close(), this.registration?.revoke()]);
    for (const result of results) {
      if (result.status === 'rejected') this.log.warn({ err: result.reason, gatewayId: this.id }, 'gateway close step failed');
    }
  }

  private jwtAuthenticatorFromConfig(): ConnectAuthenticator | undefined {
    const { authJwtSecret, authJwksUrl, authAudience, authIssuer, authMaxTokenAgeSeconds } = this.deps.config;
    if (authJwtSecret === undefined && authJwksUrl === undefined) return undefined;
    return createJwtAuthenticator({
      maxTokenAgeSeconds: authMaxTokenAgeSeconds,
      ...(authJwtSecret === undefined ? {} : { secret: authJwtSecret }),
      ...(authJwksUrl === undefined ? {} : { jwksUrl: authJwksUrl }),
      ...(authAudience === undefined ? {} : { audience: authAudience }),
      ...(authIssuer === undefined ? {} : { issuer: authIssuer }),
    });
  }

  private retryLater(task: () => void, delayMs: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      task();
    }, delayMs);
    timer.unref();
    this.timers.add(timer);
  }

  private onRegistryEvent(event: RegistryEvent): void {
    this.view.apply(event);
    if (event.type === 'status') this.log.info({ synced: event.synced }, 'registry watch status');
    else if (event.type === 'put' && event.entry.kind === 'node') {
      this.log.debug({ nodeId: event.entry.id, state: event.entry.value.state }, 'node updated');
    }
  }

  private async startWatch(backoff: Backoff): Promise<void> {
    try {
      const watch = await this.registry.watch((event) => this.onRegistryEvent(event));
      if (this.closed) await watch.close();
      else this.watch = watch;
    } catch (error) {
      const delayMs = backoff.next();
      this.log.warn({ err: error, retryInMs: delayMs }, 'registry watch failed to start');
      this.retryLater(() => void this.startWatch(backoff), delayMs);
    }
  }

  private async register(record: GatewayRecord, backoff: Backoff): Promise<void> {
    try {
      const registration = await this.registry.registerGateway(record);
      if (this.closed) {
        await registration.revoke();
        return;
      }
      this.registration = registration;
      this.metrics.leaseState.set(1);
      registration.on('lost', () => {
        this.metrics.leaseState.set(0);
        this.log.warn({ gatewayId: record.gatewayId }, 'gateway registration lost');
      });
      registration.on('registered', () => {
        this.metrics.leaseState.set(1);
        this.log.info({ gatewayId: record.gatewayId }, 'gateway registered');
      });
      registration.on('revoked', () => this.metrics.leaseState.set(0));
    } catch (error) {
      const delayMs = backoff.next();
      this.log.warn({ err: error, gatewayId: record.gatewayId, retryInMs: delayMs }, 'gateway registration failed');
      this.retryLater(() => void this.register(record, backoff), delayMs);
    }
  }

  private async route(ctx: Context): Promise<void> {
    const method = ctx.method === 'HEAD' ? 'GET' : ctx.method;
    const path = ctx.path;
    if (path === '/connect') {
      applyCors(ctx, this.deps.config.allowedOrigins ?? ['*']);
      if (method === 'POST') return this.connect(ctx);
      if (method === 'OPTIONS') return this.preflight(ctx);
      throw new HttpError('METHOD_NOT_ALLOWED', 'use POST /connect', { headers: { allow: 'POST, OPTIONS' } });
    }
    if (method === 'GET') {
      if (path === '/healthz') {
        ctx.set('cache-control', 'no-store');
        ctx.body = { status: 'ok' };
        return;
      }
      if (path === '/readyz') return this.readyz(ctx);
      if (path === '/metrics') return this.metricsPage(ctx);
      if (path === '/' || path === '/index.html') return this.demoPage(ctx);
      if (path.startsWith('/static/')) return this.staticFile(ctx, path.slice('/static/'.length));
    }
    throw new HttpError('NOT_FOUND', `${ctx.method} ${path} not found`);
  }

  private preflight(ctx: Context): void {
    ctx.set('access-control-allow-methods', 'POST, OPTIONS');
    ctx.set('access-control-allow-headers', 'content-type, authorization, x-request-id');
    ctx.set('access-control-max-age', '600');
    ctx.status = 204;
  }

  private async connect(ctx: Context): Promise<void> {
    const startedAt = process.hrtime.bigint();
    const log = (ctx.state['log'] as Logger | undefined) ?? this.log;
    let result = 'ok';
    let userId: string | undefined;
    try {
      // Before the body is read: a flood from one address costs as little as possible.
      if (this.connectLimiter) {
        const ip = this.clientIp.resolve(ctx.req.socket.remoteAddress, ctx.req.headers['x-forwarded-for']);
        const retryAfter = await this.connectLimiter.take(ipLimitKey(ip));
        if (retryAfter > 0) {
          throw new HttpError('RATE_LIMITED', 'too many /connect requests from this address', {
            headers: { 'retry-after': String(retryAfter) },
          });
        }
      }
      const request = await parseConnectRequest(ctx.req);
      userId = request.userId;
      const grant = this.authenticator ? await this.authenticator({ authorization: ctx.get('authorization') || undefined, userId }) : undefined;
      const session = await this.allocator.connect(request, log, grant?.roomGrants);
      ctx.set('cache-control', 'no-store');
      ctx.body = this.withIceServers(session);
    } catch (error) {
      result = error instanceof HttpError ? error.code : 'INTERNAL';
      if (error instanceof HttpError && error.status < 500) {
        log.info({ userId, code: error.code, status: error.status }, 'connect refused');
      } else if (error instanceof HttpError) {
        log.warn({ userId, code: error.code, err: error.cause }, 'connect unavailable');
      }
      throw error;
    } finally {
      const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      this.metrics.connectRequests.inc({ result });
      this.metrics.connectLatency.observe({ result }, seconds);
    }
  }

  /** Adds the STUN/TURN servers (with this user's TURN credentials) when the gateway has any. */
  private withIceServers(session: Session): ConnectResponse {
    const { turnUrls = [], turnSecret, turnTtlSeconds } = this.deps.config;
    const iceServers = iceServersFor(session.userId, { urls: turnUrls, secret: turnSecret, ttlSeconds: turnTtlSeconds });
    return iceServers === undefined ? session : { ...session, iceServers };
  }

  async checkReadiness(): Promise<{ ready: boolean; reasons: string[] }> {
    const reasons: string[] = [];
    if (!this.started) reasons.push('not_started');
    if (this.closed) reasons.push('closing');
    if (!(this.watch?.synced ?? false)) reasons.push('registry_not_synced');
    if (!(await this.storeProbe.reachable())) reasons.push('session_store_unreachable');
    return { ready: reasons.length === 0, reasons };
  }

  private async readyz(ctx: Context): Promise<void> {
    ctx.set('cache-control', 'no-store');
    const { reasons } = await this.checkReadiness();
    ctx.status = reasons.length === 0 ? 200 : 503;
    ctx.body = reasons.length === 0 ? { status: 'ready' } : { status: 'not_ready', reasons };
  }

  private async metricsPage(ctx: Context): Promise<void> {
    ctx.set('content-type', this.metrics.registry.contentType);
    ctx.body = await this.metrics.registry.metrics();
  }

  private async demoPage(ctx: Context): Promise<void> {
    const dir = this.deps.publicDir;
    const custom = dir === undefined ? undefined : await readFileIfExists(join(dir, 'index.html'));
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = custom ?? fallbackDemoPage(this.version);
  }

  private async staticFile(ctx: Context, relative: string): Promise<void> {
    const dir = this.deps.publicDir;
    const file = dir === undefined ? undefined : resolveInside(dir, relative);
    const content = file === undefined ? undefined : await readFileIfExists(file);
    if (file === undefined || content === undefined) throw new HttpError('NOT_FOUND', 'file not found');
    ctx.set('content-type', contentTypeOf(file));
    ctx.set('x-content-type-options', 'nosniff');
    ctx.body = content;
  }
}

/** The Koa gateway app with its registry watch and allocation. Call `start()` to follow the registry. */
export function createGateway(deps: GatewayDeps): Gateway {
  return new KoaGateway(deps);
}

export interface GatewayServer {
  gateway: Gateway;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/**
 * Creates the gateway, listens on `config.host:config.port` (port 0 picks a free one) and starts it. Rejects when
 * the port cannot be bound.
 */
export async function startGatewayServer(deps: GatewayDeps): Promise<GatewayServer> {
  const gateway = createGateway(deps);
  // A slow or stalled client must not hold a connection for node's default 5 minutes; node looks for connections
  // past these timeouts every connectionsCheckingInterval (30 s by default, which made 10 s mean up to 40 s).
  const server = createServer({ requestTimeout: 15_000, headersTimeout: 10_000, connectionsCheckingInterval: 500 }, gateway.app.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.config.port, deps.config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : deps.config.port;
  try {
    await gateway.start({ port });
  } catch (error) {
    server.close();
    throw error;
  }
  deps.logger.info({ port, host: deps.config.host, gatewayId: gateway.gatewayId }, 'gateway listening');
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await gateway.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // In-flight requests get a moment; then the rest is cut.
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
    })());
  return { gateway, port, server, close };
}

