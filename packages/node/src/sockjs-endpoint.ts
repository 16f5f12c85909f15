import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import sockjs from 'sockjs';
import type { Connection } from 'sockjs';
import { originAllowed, type Logger } from '@messaging-server/core';
import { fromSockJs, type ClientConnection } from './client-connection.js';
import { ORIGIN_DENIED_PARAM } from './handshake.js';
import { createWsTransport, type WsTransport } from './ws-transport.js';

export interface SockJsEndpointOptions {
  /** The node's listeningAddress; SockJS is served under its path (default /ws). */
  publicUrl: string;
  /** Largest transport frame: a maximum-size message with sockjs-client's escaping and framing still fits. */
  transportFrameLimit: number;
  allowedOrigins: readonly string[];
  log: Logger;
  onConnection(conn: ClientConnection): void;
}

export function sockJsPrefix(publicUrl: string): string {
  const path = new URL(publicUrl).pathname.replace(/\/+$/, '');
  return path === '' ? '/ws' : path;
}

/**
 * Mounts the SockJS endpoint on the node's public server: its two websocket transports served by `ws`, every HTTP
 * fallback and /info by sockjs. Returns the ws transport, which the node stops when it finishes.
 */
export function installSockJsEndpoint(server: Server, options: SockJsEndpointOptions): WsTransport {
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
  sock.installHandlers(server);
  const ws = createWsTransport({ prefix, maxPayload: options.transportFrameLimit, onConnection: options.onConnection });
  const sockjsUpgrade = server.listeners('upgrade') as ((req: IncomingMessage, socket: Duplex, head: Buffer) => void)[];
  server.removeAllListeners('upgrade');
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (ws.handleUpgrade(req, socket, head)) return;
    for (const listener of sockjsUpgrade) listener.call(server, req, socket, head);
  });
  // Prepended after sockjs took over the listeners, so these run before it on every request and upgrade.
  if (!options.allowedOrigins.includes('*')) {
    const mark = (req: IncomingMessage): void => markDisallowedOrigin(req, prefix, options.allowedOrigins);
    server.prependListener('request', mark);
    server.prependListener('upgrade', mark);
  }
  return ws;
}

/**
 * Browsers send Origin on every SockJS transport request; sockjs hides it from the connection (its header
 * whitelist), so the request that opens a session is marked here and refused in the handshake with 4505.
 */
function markDisallowedOrigin(req: IncomingMessage, prefix: string, allowedOrigins: readonly string[]): void {
  const url = req.url ?? '';
  if (!url.startsWith(`${prefix}/`)) return;
  if (originAllowed(allowedOrigins, req.headers.origin)) return;
  req.url = `${url}${url.includes('?') ? '&' : '?'}${ORIGIN_DENIED_PARAM}=1`;
}
