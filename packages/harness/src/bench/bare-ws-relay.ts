/**
 * The floor: a relay over the `ws` package that only forwards frames. A client connects to `/?id=X` and gets
 * `{"type":"OPEN"}`; each text frame it sends is parsed once for `dst` and forwarded unchanged to that client. No
 * sessions, no validation, no acks, no queueing: whatever our node costs above this is the price of its contract.
 *
 * Usage: node --import tsx packages/harness/src/bench/bare-ws-relay.ts <port>
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

const port = Number(process.argv[2] ?? 0);
const clients = new Map<string, WebSocket>();
const server = createServer((_req, res) => {
  res.statusCode = 404;
  res.end();
});
const wss = new WebSocketServer({ server, perMessageDeflate: false });

wss.on('connection', (ws, req) => {
  const id = new URL(req.url ?? '/', 'http://relay.invalid').searchParams.get('id');
  if (!id) return ws.close(4000, 'id required');
  clients.set(id, ws);
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    let dst: unknown;
    try {
      dst = (JSON.parse(data.toString()) as { dst?: unknown }).dst;
    } catch {
      return;
    }
    if (typeof dst === 'string') clients.get(dst)?.send(data, { binary: isBinary });
  });
  ws.on('close', () => {
    if (clients.get(id) === ws) clients.delete(id);
  });
  ws.on('error', () => undefined);
  ws.send('{"type":"OPEN"}');
});

server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`bare ws relay listening on ${typeof address === 'object' && address ? String(address.port) : '?'}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
