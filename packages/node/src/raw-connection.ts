import type { IncomingMessage } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import type { ClientConnection } from './client-connection.js';
import { closedByCode, ConnectionLifecycle, cutIfNotClosed } from './connection-lifecycle.js';

/** SockJS's raw transport (`<prefix>/websocket`): every write is its own text frame, no open, heartbeat or close frames. */
export function rawConnection(ws: WebSocket, req: IncomingMessage): ClientConnection {
  const life = new ConnectionLifecycle();
  return {
    url: req.url ?? '',
    remoteAddress: req.socket.remoteAddress,
    write(text) {
      if (life.closing || ws.readyState !== 1) return false;
      ws.send(text);
      return true;
    },
    get buffered() {
      return ws.bufferedAmount;
    },
    close(code, reason) {
      if (!life.closeByNode()) return;
      ws.close(code, reason);
      cutIfNotClosed(ws);
      life.finishSoon();
    },
    listen(onData, onClose) {
      life.listen(onClose);
      ws.on('message', (data: RawData) => {
        if (!life.closing) onData(String(data));
      });
      ws.on('close', (code: number) => life.ended(closedByCode(code)));
    },
  };
}
