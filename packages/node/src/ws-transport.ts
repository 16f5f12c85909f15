import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ClientConnection } from './client-connection.js';
import { FlushScheduler, FramedConnection } from './framed-connection.js';
import { rawConnection } from './raw-connection.js';

/** sockjs's default: a connection that sent nothing for this long gets an `h` frame. */
const HEARTBEAT_MS = 25_000;

export interface WsTransportOptions {
  /** The SockJS prefix, e.g. /ws. */
  prefix: string;
  /** Largest WebSocket message accepted; larger ones close the connection with 1009. */
  maxPayload: number;
  onConnection(conn: ClientConnection): void;
  /** Tests shorten it. */
  heartbeatMs?: number;
}

export interface WsTransport {
  /** Takes the upgrade if its path is one of the two websocket transports; false leaves it to sockjs. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /**
   * Stops the heartbeat timer. Connections are closed by their owner; a client that has not answered its close
   * within graceMs is cut, so a stopping node never waits on a dead peer (ws would wait 30 s).
   */
  close(graceMs?: number): void;
}

const ignore = (): void => undefined;

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Serves SockJS's websocket transport (`<prefix>/<server>/<session>/websocket`, SockJS framing) and the raw
 * `<prefix>/websocket` (plain text frames) with `ws`: one `ws` object per connection instead of sockjs's session,
 * faye-websocket's driver and its stream pipeline (see FramedConnection and rawConnection).
 */
export function createWsTransport(options: WsTransportOptions): WsTransport {
  const prefix = escapeRegExp(options.prefix);
  // The same paths sockjs 0.3.24 matches (server and session ids without '/' or '.', optional trailing slash).
  const framedPath = new RegExp(`^${prefix}/[^/.]+/[^/.]+/websocket/?$`);
  const rawPath = new RegExp(`^${prefix}/websocket/?$`);
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayload,
    perMessageDeflate: false,
    clientTracking: false,
  });

  // Open framed connections, for the heartbeat; every upgraded socket until it closed, to cut stragglers on stop.
  const open = new Set<FramedConnection>();
  const sockets = new Set<WebSocket>();
  const scheduler = new FlushScheduler();
  const hooks = { opened: (conn: FramedConnection) => open.add(conn), finished: (conn: FramedConnection) => open.delete(conn) };
  const heartbeat = setInterval(() => {
    for (const conn of open) conn.beat();
  }, options.heartbeatMs ?? HEARTBEAT_MS);
  heartbeat.unref();

  return {
    handleUpgrade(req, socket, head) {
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      const framed = framedPath.test(path);
      if (!framed && !rawPath.test(path)) return false;
      wss.handleUpgrade(req, socket, head, (ws) => {
        // An error (e.g. a frame over maxPayload) is followed by 'close'; without a listener it would throw.
        ws.on('error', ignore);
        sockets.add(ws);
        ws.once('close', () => sockets.delete(ws));
        if (framed) {
          const conn = new FramedConnection(ws, req, scheduler, hooks);
          // `o` goes first: the node may close the connection synchronously (a drain refuses it at once).
          conn.open();
          options.onConnection(conn);
        } else {
          options.onConnection(rawConnection(ws, req));
        }
      });
      return true;
    },
    close(graceMs = 1000) {
      clearInterval(heartbeat);
      if (sockets.size === 0) return;
      const timer = setTimeout(() => {
        for (const ws of sockets) ws.terminate();
      }, graceMs);
      timer.unref();
    },
  };
}
