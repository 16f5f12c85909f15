import type { Connection } from 'sockjs';
import { ConnectionLifecycle } from './connection-lifecycle.js';

/**
 * Who ended a connection. `client`: the client sent a WebSocket close frame first (it left). `node`: this node closed
 * it. `network`: it ended with no close frame from either side (dropped, timed out, or an HTTP fallback session that
 * expired: those transports carry no close frame from the client).
 */
export type ClosedBy = 'client' | 'node' | 'network';

/**
 * What the node needs from one client connection, whatever transport carries it (sockjs's HTTP fallbacks, or the
 * websocket transports served by `ws`). Handshake, rate limits, idle timeout, origin check and drain see only this.
 */
export interface ClientConnection {
  /** The request URL that opened the connection (path and query). */
  readonly url: string;
  readonly remoteAddress: string | undefined;
  /** Queues one text frame; false once the connection is closing or closed. */
  write(text: string): boolean;
  /** Bytes written and not yet handed to the kernel: what a client that does not read leaves in node memory. */
  readonly buffered: number;
  /** Sends queued frames, then the close frame, then closes. Idempotent. */
  close(code: number, reason: string): void;
  /** Attaches the two handlers; call once, synchronously, before any frame can arrive. */
  listen(onData: (text: string) => void, onClose: (closedBy: ClosedBy) => void): void;
}

/** The parts of sockjs 0.3's session that hold what a connection has not read yet. */
interface SockJsSession {
  send_buffer: string[];
  recv?: { response?: { writableLength?: number } } | null;
}

/** Adapts a sockjs connection (every transport sockjs still serves) to ClientConnection. */
export function fromSockJs(conn: Connection): ClientConnection {
  // The close frame carries the code as JSON: it must be a number (the typings say string), or clients see "4000".
  const close = conn.close.bind(conn) as unknown as (code: number, reason: string) => boolean;
  // sockjs queues frames in its session until the client polls, and flushes the whole queue at once.
  const session = (conn as unknown as { _session?: SockJsSession })._session;
  let queued = 0;
  const life = new ConnectionLifecycle();
  return {
    url: conn.url ?? '',
    remoteAddress: conn.remoteAddress,
    write(text) {
      if ((session?.send_buffer.length ?? 0) === 0) queued = 0;
      queued += text.length;
      return conn.write(text);
    },
    get buffered() {
      const waiting = (session?.send_buffer.length ?? 0) > 0 ? queued : 0;
      return waiting + (session?.recv?.response?.writableLength ?? 0);
    },
    close: (code, reason) => {
      // sockjs sends its close frame and emits 'close' once the session is over; the node hears of it then.
      if (life.closeByNode()) close(code, reason);
    },
    listen(onData, onClose) {
      life.listen(onClose);
      conn.on('data', (data: unknown) => onData(typeof data === 'string' ? data : String(data)));
      // sockjs's HTTP fallbacks have no close frame from the client: an end the node did not ask for is a drop.
      conn.on('close', () => life.ended('network'));
    },
  };
}
