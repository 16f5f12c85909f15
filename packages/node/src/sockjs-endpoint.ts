import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import sockjs from 'sockjs';
import type { Connection } from 'sockjs';
import { originAllowed, type Logger } from '@messaging-server/core';
import { httpStatusOf } from '@messaging-server/protocol';
import { fromSockJs, type ClientConnection } from './client-connection.js';
import { ORIGIN_DENIED_PARAM } from './handshake.js';
import { sendError } from './http-util.js';
import type { PublicRoutes } from './public-guard.js';
import { createWsTransport, escapeRegExp, type WsTransport } from './ws-transport.js';

export interface SockJsEndpointOptions {
  /** The node's listeningAddress; SockJS is served under its path (default /ws). */
  publicUrl: string;
  /** Largest transport frame: a maximum-size message with sockjs-client's escaping and framing still fits. */
  transportFrameLimit: number;
  allowedOrigins: readonly string[];
  log: Logger;
  onConnection(conn: ClientConnection): void;
}

/** The SockJS routes of the public port (behind its guard), and the ws transport the node stops when it finishes. */
export interface SockJsEndpoint extends PublicRoutes {
  readonly ws: WsTransport;
}

/**
 * Largest WebSocket frame: sockjs-client escapes some characters as \uXXXX and wraps frames in a JSON array, so a
 * maximum-size message still fits (and gets MESSAGE_TOO_LARGE when over); far larger frames are cut (1009).
 */
export function transportFrameLimit(maxMessageBytes: number): number {
  return maxMessageBytes * 8 + 4096;
}

function sockJsPrefix(publicUrl: string): string {
  const path = new URL(publicUrl).pathname.replace(/\/+$/, '');
  return path === '' ? '/ws' : path;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * The SockJS endpoint: its two websocket transports served by `ws`, every HTTP fallback and /info by sockjs. Upgrades
 * never reach sockjs (it has nothing behind them: an upgrade on a fallback path crashed the process).
 */
export function createSockJsEndpoint(options: SockJsEndpointOptions): SockJsEndpoint {
  const { log } = options;
  const prefix = sockJsPrefix(options.publicUrl);
  const sock = sockjs.createServer({
    prefix,
    // Passed through to faye-websocket; @types/sockjs does not list it.
    ...({ faye_server_options: { maxLength: options.transportFrameLimit } } as object),
    log: (severity: string, message: string) => {
      if (severity === 'error') log.warn({ detail: message }, 'sockjs error');
    },
  });
  sock.on('connection', (conn: Connection | null) => {
    // sockjs emits null for a connection that died during its opening request.
    if (conn) options.onConnection(fromSockJs(conn));
  });
  // sockjs only installs itself on a server; a detached emitter yields its request handler without the server.
  const detached = new EventEmitter();
  sock.installHandlers(detached as unknown as Server);
  const sockjsRequest = detached.listeners('request')[0] as Handler;
  const ws = createWsTransport({ prefix, maxPayload: options.transportFrameLimit, onConnection: options.onConnection });
  const restricted = !options.allowedOrigins.includes('*');
  const payloadPath = new RegExp(`^${escapeRegExp(prefix)}/[^/.]+/[^/.]+/(xhr_send|jsonp_send)/?(\\?|$)`);
  const originLess = new RegExp(`^${escapeRegExp(prefix)}(/iframe[^/]*\\.html|/[^/.]+/[^/.]+/(jsonp|jsonp_send|htmlfile))/?(\\?|$)`);
  return {
    prefix,
    ws,
    request(req, res) {
      if (restricted && originLess.test(req.url ?? '')) {
        // Browsers send these (script tags, forms, iframes) without Origin, so an allow-list could not hold on them.
        return sendError(res, 'ORIGIN_NOT_ALLOWED', 'this transport is off while MSG_ALLOWED_ORIGINS is a list');
      }
      if (restricted) markDisallowedOrigin(req, prefix, options.allowedOrigins);
      if (payloadPath.test(req.url ?? '')) answerBadPayloadAs4xx(res);
      if (!sockjsRequest(req, res)) sendError(res, 'NOT_FOUND', 'not found');
    },
    upgrade(req, socket, head) {
      if (restricted) markDisallowedOrigin(req, prefix, options.allowedOrigins);
      return ws.handleUpgrade(req, socket, head);
    },
  };
}

/**
 * sockjs answers a send with no payload or broken JSON with 500 (its protocol says so); it is the client's bad input,
 * not our failure, so it goes out as the contract's 400. Nothing else on these paths answers 500.
 */
function answerBadPayloadAs4xx(res: ServerResponse): void {
  const writeHead = res.writeHead.bind(res) as (status: number, ...rest: unknown[]) => ServerResponse;
  const badInput = httpStatusOf('INVALID_REQUEST');
  const internal = httpStatusOf('INTERNAL');
  (res as unknown as { writeHead: (status: number, ...rest: unknown[]) => ServerResponse }).writeHead = (status, ...rest) =>
    writeHead(status === internal ? badInput : status, ...rest);
}

/**
 * Browsers send Origin on every SockJS transport request still served; sockjs hides it from the connection (its
 * header whitelist), so the request that opens a session is marked here and refused in the handshake with 4505.
 */
function markDisallowedOrigin(req: IncomingMessage, prefix: string, allowedOrigins: readonly string[]): void {
  const url = req.url ?? '';
  if (!url.startsWith(`${prefix}/`)) return;
  if (originAllowed(allowedOrigins, req.headers.origin)) return;
  req.url = `${url}${url.includes('?') ? '&' : '?'}${ORIGIN_DENIED_PARAM}=1`;
}
