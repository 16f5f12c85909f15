import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@messaging-server/core';
import { MAX_CONTENT_DEPTH, nestedDeeperThan, type FrameErrorCode } from '@messaging-server/protocol';
import type { Registry as MetricsRegistry } from 'prom-client';
import { BodyTooLargeError, parseJson, readBody, sendError, sendErrorAndClose, sendJson } from './http-util.js';
import { InternalAccess, type RouteAccess } from './internal-access.js';
import {
  DELIVER_PATH,
  DRAIN_PATH,
  OUTCOMES_PATH,
  isOverBudget,
  parseDeliverRequest,
  parseOutcomes,
  REPLACE_PATH,
  type DeliverRequest,
  type DeliverResult,
  type OutcomeReport,
} from './peer/internal-wire.js';
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
  /** `spent()` turns true once the sender has stopped waiting: from then on, nothing more may be delivered. */
  deliver(request: DeliverRequest, spent: () => boolean): Promise<DeliverResult[]>;
  /** The registered internal address of a node, as this node's registry view knows it. */
  peerAddress(nodeId: string): string | undefined;
  /** The identity key a node registered (NodeRecord.identityKey), as this node's registry view knows it. */
  peerKey(nodeId: string): string | undefined;
  /** Whether `userId`'s session is on `nodeId` (see SenderCheck). */
  senderOn(userId: string, nodeId: string): Promise<boolean>;
  outcomes(reports: OutcomeReport[]): number;
  /** v1.2: an operation of a room homed here, from a member's node. */
  roomOp(op: RoomOp): Promise<RoomAnswer>;
  /** v1.2: one copy of a room frame from its home, for the listed members here. */
  roomFanout(fanout: RoomFanout): number;
  readiness(): Readiness;
}

export interface InternalApiOptions {
  nodeId: string;
  clusterSecret?: string | undefined;
  /** Also accepted on `cluster` routes while the secret is rotated. */
  clusterSecretPrevious?: string | undefined;
  bodyLimit: number;
  metrics: MetricsRegistry;
  log: Logger;
  handlers: InternalApiHandlers;
}

/**
 * Why single messages of a delivery request are refused, by index; the others are delivered. One message never fails
 * its batch: content nested past the limit (which a current sender refuses at its edge, but an older or broken peer
 * may still send) gets INVALID_MESSAGE; a sender whose session is not on the forwarding node (which, with a cluster
 * secret, is the node that signed the request) gets FORBIDDEN_SENDER.
 */
async function refusalsOf(request: DeliverRequest, senderOn: InternalApiHandlers['senderOn']): Promise<(FrameErrorCode | undefined)[]> {
  const forged = new Set<string>();
  const senders = [...new Set(request.messages.map((m) => m.from))];
  const verdicts = await Promise.all(senders.map((from) => senderOn(from, request.fromNode)));
  senders.forEach((from, i) => (verdicts[i] ? undefined : forged.add(from)));
  return request.messages.map((m) => {
    if (nestedDeeperThan(m.content, MAX_CONTENT_DEPTH)) return 'INVALID_MESSAGE';
    return forged.has(m.from) ? 'FORBIDDEN_SENDER' : undefined;
  });
}

async function deliverEach(
  request: DeliverRequest,
  refusals: (FrameErrorCode | undefined)[],
  deliver: InternalApiHandlers['deliver'],
  spent: () => boolean,
): Promise<DeliverResult[]> {
  if (refusals.every((code) => code === undefined)) return deliver(request, spent);
  const delivered = await deliver({ ...request, messages: request.messages.filter((_m, i) => refusals[i] === undefined) }, spent);
  let next = 0;
  return refusals.map((code): DeliverResult => (code === undefined ? (delivered[next++] as DeliverResult) : { status: 'error', code }));
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
  return sendJson(res, 200, { delivered: handlers.roomFanout(fanout) });
}


/**
 * The node's internal port: `/healthz` (always 200 while the process runs), `/readyz`, `/metrics` (open for
 * probes and scrapers), and `/internal/…` (with a cluster secret: 401 unless the caller has what the route's access
 * asks for). Returns false for any other path, so a combined server (standalone mode) can route it elsewhere.
 */
export function createInternalApi(options: InternalApiOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { nodeId, bodyLimit, metrics, log, handlers } = options;
  const access = new InternalAccess([options.clusterSecret, options.clusterSecretPrevious], (id) => handlers.peerKey(id));

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
      case DELIVER_PATH: {
        const request = parseDeliverRequest(body);
        if (!request) return sendError(res, 'INVALID_REQUEST', 'malformed delivery request');
        // A node speaks only for itself, and (the sender check below) only for the users whose sessions it holds.
        if (signer !== undefined && request.fromNode !== signer) {
          return sendError(res, 'FORBIDDEN_SENDER', 'fromNode is not the node that signed the request');
        }
        // Outcomes go to replyTo: only ever to a registered node's own internal address.
        if (request.replyTo !== handlers.peerAddress(request.fromNode)) {
          return sendError(res, 'FORBIDDEN_SENDER', 'replyTo is not the registered internal address of fromNode');
        }
        if (isOverBudget(request, arrivedAt)) {
          return sendJson(res, 200, { results: request.messages.map(() => ({ status: 'error', code: 'RELAY_FAILED' })) });
        }
        const refusals = await refusalsOf(request, handlers.senderOn);
        // Checked again after every lookup: a silent store can take the rest of the budget after the check above.
        const spent = (): boolean => isOverBudget(request, arrivedAt);
        return sendJson(res, 200, { results: await deliverEach(request, refusals, handlers.deliver, spent) });
      }
      case ROOM_OP_PATH:
      case ROOM_FANOUT_PATH:
        return handleRoom(res, path, body, signer, handlers);
      case OUTCOMES_PATH: {
        const reports = parseOutcomes(body);
        if (!reports) return sendError(res, 'INVALID_REQUEST', 'malformed outcome report');
        return sendJson(res, 200, { accepted: handlers.outcomes(reports) });
      }
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
