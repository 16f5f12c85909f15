import type { IncomingMessage } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import type { ClientConnection, ClosedBy } from './client-connection.js';
import { closedByCode, ConnectionLifecycle, cutIfNotClosed } from './connection-lifecycle.js';

/**
 * Flushes connections with queued frames together, once per event-loop turn: frames written to one connection in
 * the same turn leave as one `a[...]` frame, in one socket write.
 */
export class FlushScheduler {
  #dirty: FramedConnection[] = [];
  #scheduled = false;

  mark(conn: FramedConnection): void {
    this.#dirty.push(conn);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const batch = this.#dirty;
      this.#dirty = [];
      for (const each of batch) each.flush();
    });
  }
}

/** Where a framed connection reports its opening and its end (the transport's heartbeat set). */
export interface FramedConnectionHooks {
  opened(conn: FramedConnection): void;
  finished(conn: FramedConnection): void;
}

/**
 * One client on SockJS's websocket transport (`<prefix>/<server>/<session>/websocket`), with SockJS framing: `o` to
 * open, `a[...]` for messages, `h` heartbeats, `c[code,reason]` to close.
 */
export class FramedConnection implements ClientConnection {
  readonly url: string;
  readonly remoteAddress: string | undefined;
  private queue: string[] | undefined;
  private queuedBytes = 0;
  private readonly life: ConnectionLifecycle;
  private wrote = false;

  constructor(
    private readonly ws: WebSocket,
    req: IncomingMessage,
    private readonly scheduler: FlushScheduler,
    private readonly hooks: FramedConnectionHooks,
  ) {
    this.url = req.url ?? '';
    this.remoteAddress = req.socket.remoteAddress;
    this.life = new ConnectionLifecycle(() => this.hooks.finished(this));
  }

  write(text: string): boolean {
    if (this.life.closing) return false;
    if (this.queue === undefined) {
      this.queue = [text];
      this.scheduler.mark(this);
    } else {
      this.queue.push(text);
    }
    this.queuedBytes += text.length;
    return true;
  }

  get buffered(): number {
    return this.queuedBytes + this.ws.bufferedAmount;
  }

  flush(): void {
    const queue = this.queue;
    if (queue === undefined) return;
    this.queue = undefined;
    this.queuedBytes = 0;
    let frame = 'a[';
    for (let i = 0; i < queue.length; i += 1) {
      if (i > 0) frame += ',';
      frame += JSON.stringify(queue[i]);
    }
    this.send(`${frame}]`);
  }

  /** Called every heartbeat interval: a connection that sent nothing since the last one gets `h`. */
  beat(): void {
    if (!this.wrote) this.send('h');
    this.wrote = false;
  }

  close(code: number, reason: string): void {
    if (this.life.closing) return;
    this.flush();
    this.life.closeByNode();
    this.send(`c${JSON.stringify([code, reason])}`);
    this.ws.close(code, reason);
    cutIfNotClosed(this.ws);
    this.life.finishSoon();
  }

  listen(onData: (text: string) => void, onClose: (closedBy: ClosedBy) => void): void {
    this.life.listen(onClose);
    this.ws.on('message', (data: RawData) => this.receive(data, onData));
    this.ws.on('close', (code: number) => {
      this.queue = undefined;
      this.life.ended(closedByCode(code));
    });
  }

  open(): void {
    this.hooks.opened(this);
    this.send('o');
  }

  /** A client frame is a JSON array of messages (or one JSON string); anything else is broken framing. */
  private receive(data: RawData, onData: (text: string) => void): void {
    if (this.life.closing) return;
    const payload = String(data);
    if (payload.length === 0) return;
    let message: unknown;
    try {
      message = JSON.parse(payload);
    } catch {
      // sockjs closes the WebSocket without a close frame.
      this.life.closeByNode();
      this.queue = undefined;
      this.ws.close(3000, 'Broken framing.');
      this.life.finishSoon();
      return;
    }
    const messages = Array.isArray(message) ? message : [message];
    for (const m of messages) {
      if (this.life.closing) return;
      onData(typeof m === 'string' ? m : String(m));
    }
  }

  private send(frame: string): void {
    if (this.ws.readyState !== 1) return;
    this.wrote = true;
    this.ws.send(frame);
  }
}
