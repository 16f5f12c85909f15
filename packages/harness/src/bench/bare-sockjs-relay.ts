/**
 * A reference point between the bare `ws` relay and our node: the same forward-only relay on `sockjs` 0.3.24 (what our
 * node is built on). Its distance to ours is the cost of sessions, validation and acks; its distance to the bare `ws`
 * relay is the cost of sockjs itself. Clients connect to `/ws/<server>/<session>/websocket?id=X` and get
 * `{"type":"OPEN"}`; each message is parsed once for `dst` and written unchanged to that connection.
 *
 * Usage: node bare-sockjs-relay.mjs <port>   (opt-in in the bench: BENCH_SYSTEMS=…,sockjs)
 */
import { createServer } from 'node:http';
import sockjs from 'sockjs';
import type { Connection } from 'sockjs';

const port = Number(process.argv[2] ?? 0);
const clients = new Map<string, Connection>();
const server = createServer((_req, res) => {
  res.statusCode = 404;
  res.end();
});
const sock = sockjs.createServer({ prefix: '/ws', log: () => undefined });
sock.on('connection', (conn: Connection | null) => {
  if (!conn) return;
  const id = new URL(conn.url ?? '/', 'http://relay.invalid').searchParams.get('id');
  if (!id) return void conn.close();
  clients.set(id, conn);
  conn.on('data', (text: string) => {
    let dst: unknown;
    try {
      dst = (JSON.parse(text) as { dst?: unknown }).dst;
    } catch {
      return;
    }
    if (typeof dst === 'string') clients.get(dst)?.write(text);
  });
  conn.on('close', () => {
    if (clients.get(id) === conn) clients.delete(id);
  });
  conn.write('{"type":"OPEN"}');
});
sock.installHandlers(server);
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`bare sockjs relay listening on ${typeof address === 'object' && address ? String(address.port) : '?'}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
