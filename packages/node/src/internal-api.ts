import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger, NodeIdentity } from '@messaging-server/core';
import type { Registry as MetricsRegistry } from 'prom-client';
import { BodyTooLargeError, parseJson, readBody, sendError, sendErrorAndClose, sendJson } from './http-util.js';
import { InternalAccess, type RouteAccess } from './internal-access.js';
import { DELIVER_PATH, DRAIN_PATH, OUTCOMES_PATH, REPLACE_PATH, type PeerRoutes } from './peer/index.js';
import { parseRoomFanout, parseRoomOp, ROOM_FANOUT_PATH, ROOM_OP_PATH, type RoomAnswer, type RoomFanout, type RoomOp } from './room-wire.js';

export interface Readiness {
  ready: boolean;
  registered: boolean;
  synced: boolean;
  draining: boolean;
  /** Nodes in this node's view of the registry (itself included). */
  nodes: number;
}

/** What the node does for each internal request; the HTTP surface (auth, parsing, status codes) lives here. */
export interface InternalApiHandlers {
  replace(userId: string, listeningKey: string): boolean;
  drain(): void;
  /** Deliveries and outcome reports from other nodes (peer/peer-routes.ts), once admitted here. */
  peer: PeerRoutes;
  /** The identity key a node registered (NodeRecord.identityKey), as this node's registry view knows it. */
  peerKey(nodeId: string): string | undefined;
  /** Whether `userId`'s session is on `nodeId` (see SenderCheck). */
  senderOn(userId: string, nodeId: string): Promise<boolean>;
  /** v1.2: an operation of a room homed here, from a member's node. */
  roomOp(op: RoomOp): Promise<RoomAnswer>;
  /** v1.2: one copy of a room frame from its home, for the listed members here; returns those not connected here. */
  roomFanout(fanout: RoomFanout): Promise<string[]>;
  readiness(): Readiness;
}

export interface InternalApiOptions {
  nodeId: string;
  clusterSecret?: string | undefined;
  /** Also accepted on `cluster` routes while the secret is rotated. */
  clusterSecretPrevious?: string | undefined;
  /** This node's own identity, with which `node` routes are verified (none: they are refused unless open). */
  identity?: NodeIdentity | undefined;
  bodyLimit: number;
  metrics: MetricsRegistry;
  log: Logger;
  handlers: InternalApiHandlers;
}

/**
 * Every internal route and who may call it (internal-access.ts). A new route declares its access here: `node` for
 * what only a node sends (deliveries, outcomes), `cluster` for what gateways and msgctl send.
 */
export const ROUTE_ACCESS: ReadonlyMap<string, RouteAccess> = new Map<string, RouteAccess>([
  [REPLACE_PATH, 'cluster'],
  [DRAIN_PATH, 'cluster'],
  [DELIVER_PATH, 'node'],
  [OUTCOMES_PATH, 'node'],
  [ROOM_OP_PATH, 'node'],
  [ROOM_FANOUT_PATH, 'node'],
]);

/** The authenticated request's JSON body, or undefined once an answer has gone out. */
async function admitted(
  access: InternalAccess,
  bodyLimit: number,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<{ body: unknown; signer?: string } | undefined> {
  // An unknown path asks for the cluster secret first, as every path did before routes had their own access.
  const admission = access.admit(req, ROUTE_ACCESS.get(path) ?? 'cluster');
  // A refused request's body is never read: the answer goes out and the connection with it (the body may be endless).
  if (!admission.ok) return void sendErrorAndClose(res, 'UNAUTHORIZED', admission.message);
  if (!ROUTE_ACCESS.has(path)) return void sendErrorAndClose(res, 'NOT_FOUND', 'no such internal path');
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    return void sendErrorAndClose(res, 'METHOD_NOT_ALLOWED', 'method not allowed');
  }
  let raw: Buffer;
  try {
    raw = await readBody(req, bodyLimit);
  } catch (error) {
    if (error instanceof BodyTooLargeError) return void sendErrorAndClose(res, 'PAYLOAD_TOO_LARGE', 'body too large');
    return void sendError(res, 'INVALID_REQUEST', 'body could not be read');
  }
  let signer: string | undefined;
  if (admission.claim) {
    const confirmed = access.confirm(admission.claim, req, raw);
    if (!confirmed.ok) return void sendErrorAndClose(res, 'UNAUTHORIZED', confirmed.message);
    signer = confirmed.nodeId;
  }
  try {
    return { body: parseJson(raw), ...(signer === undefined ? {} : { signer }) };
  } catch {
    return void sendError(res, 'INVALID_REQUEST', 'body is not valid JSON');
  }
}

/** v1.2: a room operation for its home here, or a home's fan-out to this node's members. */
async function handleRoom(res: ServerResponse, path: string, body: unknown, signer: string | undefined, handlers: InternalApiHandlers): Promise<void> {
  if (path === ROOM_OP_PATH) {
    const op = parseRoomOp(body);
    if (!op) return sendError(res, 'INVALID_REQUEST', 'malformed room operation');
    // As for deliveries: a node speaks only for itself, and sends to a room only for users whose sessions it holds.
    if (signer !== undefined && op.nodeId !== signer) return sendError(res, 'FORBIDDEN_SENDER', 'nodeId is not the node that signed the request');
    if (signer !== undefined && op.op === 'message' && !(await handlers.senderOn(op.userId, op.nodeId))) {
      return sendError(res, 'FORBIDDEN_SENDER', 'the sender has no session on the node that signed the request');
    }
    return sendJson(res, 200, await handlers.roomOp(op));
  }
  const fanout = parseRoomFanout(body);
  if (!fanout) return sendError(res, 'INVALID_REQUEST', 'malformed room fan-out');
  const missed = await handlers.roomFanout(fanout);
  return sendJson(res, 200, { delivered: fanout.to.length - missed.length, missed });
}


/**
 * The node's internal port: `/healthz` (always 200 while the process runs), `/readyz`, `/metrics` (open for
 * probes and scrapers), and `/internal/…` (with a cluster secret: 401 unless the caller has what the route's access
 * asks for). Returns false for any other path, so a combined server (standalone mode) can route it elsewhere.
 */
export function createInternalApi(options: InternalApiOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { nodeId, bodyLimit, metrics, log, handlers } = options;
  const access = new InternalAccess([options.clusterSecret, options.clusterSecretPrevious], options.identity, (id) => handlers.peerKey(id));

  async function handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const arrivedAt = performance.now();
    const request = await admitted(access, bodyLimit, req, res, path);
    if (request) return route(res, path, request.body, request.signer, arrivedAt);
  }

  async function route(res: ServerResponse, path: string, body: unknown, signer: string | undefined, arrivedAt: number): Promise<void> {
    switch (path) {
      case REPLACE_PATH: {
        const b = body as { userId?: unknown; listeningKey?: unknown } | undefined;
        if (typeof b?.userId !== 'string' || typeof b.listeningKey !== 'string') {
          return sendError(res, 'INVALID_REQUEST', 'userId and listeningKey are required');
        }
        return sendJson(res, 200, { closed: handlers.replace(b.userId, b.listeningKey) });
      }
      case DRAIN_PATH:
        handlers.drain();
        return sendJson(res, 202, { draining: true });
      case DELIVER_PATH:
      case OUTCOMES_PATH: {
        const answer = await handlers.peer(path, body, signer, arrivedAt);
        return 'error' in answer ? sendError(res, answer.error, answer.message) : sendJson(res, answer.status, answer.body);
      }
      case ROOM_OP_PATH:
      case ROOM_FANOUT_PATH:
        return handleRoom(res, path, body, signer, handlers);
    }
  }

  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/healthz') {
      sendJson(res, 200, { status: 'ok', nodeId });
      return true;
    }
    if (path === '/readyz') {
      const r = handlers.readiness();
      sendJson(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not_ready', nodeId, ...r });
      return true;
    }
    if (path === '/metrics') {
      metrics
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(text);
        })
        .catch((error: unknown) => {
          log.error({ err: error }, 'metrics collection failed');
          sendError(res, 'INTERNAL', 'metrics collection failed');
        });
      return true;
    }
    if (!path.startsWith('/internal/')) return false;
    handle(req, res, path).catch((error: unknown) => {
      log.error({ path, err: error }, 'internal request failed');
      sendError(res, 'INTERNAL', 'internal error');
    });
    return true;
  };
}
