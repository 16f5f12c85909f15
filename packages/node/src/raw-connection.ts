import type { IncomingMessage } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import type { ClientConnection, ClosedBy } from './client-connection.js';
import { closedByCode, cutIfNotClosed } from './framed-connection.js';

/** SockJS's raw transport (`<prefix>/websocket`): every write is its own text frame, no open, heartbeat or close frames. */
export function rawConnection(ws: WebSocket, req: IncomingMessage): ClientConnection {
  let closing = false;
  let closed = false;
  let closedBy: ClosedBy = 'network';
  let onCloseHandler: ((closedBy: ClosedBy) => void) | undefined;
  const finish = (): void => {
    if (closed) return;
    closed = true;
    onCloseHandler?.(closedBy);
  };
  return {
    url: req.url ?? '',
    remoteAddress: req.socket.remoteAddress,
    write(text) {
      if (closing || ws.readyState !== 1) return false;
      ws.send(text);
      return true;
    },
    get buffered() {
      return ws.bufferedAmount;
    },
    close(code, reason) {
      if (closing) return;
      closing = true;
      closedBy = 'node';
      ws.close(code, reason);
      cutIfNotClosed(ws);
      process.nextTick(finish);
    },
    listen(onData, onClose) {
      onCloseHandler = onClose;
      ws.on('message', (data: RawData) => {
        if (!closing) onData(String(data));
      });
      ws.on('close', (code: number) => {
        if (!closing) closedBy = closedByCode(code);
        closing = true;
        finish();
      });
    },
  };
}
