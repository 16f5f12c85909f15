import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { ClientConnection } from './client-connection.js';

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

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Serves SockJS's websocket transport (`<prefix>/<server>/<session>/websocket`, SockJS framing) and the raw
 * `<prefix>/websocket` (plain text frames) with `ws`: one `ws` object per connection instead of sockjs's session,
 * faye-websocket's driver and its stream pipeline. Frames written to a SockJS-framed connection in the same
 * event-loop turn leave as one `a[...]` frame, in one socket write.
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

  const open = new Set<FramedConnection>();
  // Every upgraded socket until its WebSocket closed, to cut the stragglers when the node stops.
  const sockets = new Set<WebSocket>();
  // Connections with queued frames; flushed together once per event-loop turn.
  let dirty: FramedConnection[] = [];
  let flushScheduled = false;
  const flushAll = (): void => {
    flushScheduled = false;
    const batch = dirty;
    dirty = [];
    for (const conn of batch) conn.flush();
  };
  const markDirty = (conn: FramedConnection): void => {
    dirty.push(conn);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushAll);
    }
  };

  const heartbeat = setInterval(() => {
    for (const conn of open) conn.beat();
  }, options.heartbeatMs ?? HEARTBEAT_MS);
  heartbeat.unref();

  class FramedConnection implements ClientConnection {
    readonly url: string;
    readonly remoteAddress: string | undefined;
    private queue: string[] | undefined;
    private closing = false;
    private closed = false;
    private wrote = false;
    private onClose: (() => void) | undefined;

    constructor(
      private readonly ws: WebSocket,
      req: IncomingMessage,
    ) {
      this.url = req.url ?? '';
      this.remoteAddress = req.socket.remoteAddress;
    }

    write(text: string): boolean {
      if (this.closing) return false;
      if (this.queue === undefined) {
        this.queue = [text];
        markDirty(this);
      } else {
        this.queue.push(text);
      }
      return true;
    }

    flush(): void {
      const queue = this.queue;
      if (queue === undefined) return;
      this.queue = undefined;
      let frame = 'a[';
      for (let i = 0; i < queue.length; i += 1) {
        if (i > 0) frame += ',';
        frame += JSON.stringify(queue[i]);
      }
      this.send(`${frame}]`);
    }

    beat(): void {
      if (!this.wrote) this.send('h');
      this.wrote = false;
    }

    close(code: number, reason: string): void {
      if (this.closing) return;
      this.flush();
      this.closing = true;
      this.send(`c${JSON.stringify([code, reason])}`);
      this.ws.close(code, reason);
      // The node forgets the connection now, not when (or if) the client answers the close handshake.
      process.nextTick(() => this.finish());
    }

    listen(onData: (text: string) => void, onClose: () => void): void {
      this.onClose = onClose;
      this.ws.on('message', (data: RawData) => {
        if (this.closing) return;
        const payload = String(data);
        if (payload.length === 0) return;
        let message: unknown;
        try {
          message = JSON.parse(payload);
        } catch {
          // sockjs closes the WebSocket without a close frame.
          this.closing = true;
          this.queue = undefined;
          this.ws.close(3000, 'Broken framing.');
          process.nextTick(() => this.finish());
          return;
        }
        if (Array.isArray(message)) {
          for (const m of message) {
            if (this.closing) return;
            onData(typeof m === 'string' ? m : String(m));
          }
        } else {
          onData(typeof message === 'string' ? message : String(message));
        }
      });
      this.ws.on('close', () => {
        this.closing = true;
        this.queue = undefined;
        this.finish();
      });
    }

    open(): void {
      open.add(this);
      this.send('o');
    }

    private send(frame: string): void {
      if (this.ws.readyState !== 1) return;
      this.wrote = true;
      this.ws.send(frame);
    }

    private finish(): void {
      if (this.closed) return;
      this.closed = true;
      open.delete(this);
      this.onClose?.();
    }
  }

  /** The raw transport: every write is its own text frame, no open, heartbeat or close frames. */
  function rawConnection(ws: WebSocket, req: IncomingMessage): ClientConnection {
    let closing = false;
    let closed = false;
    let onCloseHandler: (() => void) | undefined;
    const finish = (): void => {
      if (closed) return;
      closed = true;
      onCloseHandler?.();
    };
    return {
      url: req.url ?? '',
      remoteAddress: req.socket.remoteAddress,
      write(text) {
        if (closing || ws.readyState !== 1) return false;
        ws.send(text);
        return true;
      },
      close(code, reason) {
        if (closing) return;
        closing = true;
        ws.close(code, reason);
        process.nextTick(finish);
      },
      listen(onData, onClose) {
        onCloseHandler = onClose;
        ws.on('message', (data: RawData) => {
          if (!closing) onData(String(data));
        });
        ws.on('close', () => {
          closing = true;
          finish();
        });
      },
    };
  }

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
          const conn = new FramedConnection(ws, req);
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
