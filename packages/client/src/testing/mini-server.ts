// A minimal stand-in for gateway + one node, following the wire contract, for the SDK's own tests and a demo smoke
// run. Not the real server: one process, no store, no cross-node relay.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import sockjs from 'sockjs';

interface Conn {
  userId: string;
  conn: sockjs.Connection;
}

export interface MiniServer {
  url: string;
  nodeId: string;
  connectCalls: { userId: string; avoid?: string[] }[];
  connections: Map<string, Conn>;
  /** Closes a user's connection with a SockJS close code. */
  kick(userId: string, code: number, reason: string): void;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json' };

export async function startMiniServer(options: { publicDir?: string; host?: string } = {}): Promise<MiniServer> {
  const host = options.host ?? '127.0.0.1';
  const keys = new Map<string, string>();
  const connections = new Map<string, Conn>();
  const connectCalls: MiniServer['connectCalls'] = [];
  let url = '';
  const nodeId = 'mini-node';

  const sock = sockjs.createServer({ prefix: '/ws', log: () => {} });
  sock.on('connection', (conn) => {
    if (!conn) return;
    const query = new URL(conn.url, 'http://x').searchParams;
    const userId = query.get('userId') ?? '';
    const key = query.get('listeningKey') ?? query.get('token');
    if (!key || keys.get(userId) !== key) {
      conn.close('4500', 'invalid_credentials');
      return;
    }
    keys.delete(userId);
    connections.get(userId)?.conn.close('4503', 'session_replaced');
    const entry = { userId, conn };
    connections.set(userId, entry);
    conn.write(JSON.stringify({ type: 'welcome', userId, nodeId }));
    conn.on('data', (text: string) => {
      const frame = JSON.parse(text) as { type?: string; id?: string; to?: string; content?: unknown };
      if (frame.type === 'ping') {
        conn.write(JSON.stringify({ type: 'pong', id: frame.id }));
        return;
      }
      const target = connections.get(frame.to ?? '');
      if (!target) {
        conn.write(JSON.stringify({ type: 'error', code: 'PEER_UNAVAILABLE', message: 'no session', id: frame.id }));
        return;
      }
      target.conn.write(JSON.stringify({ type: 'message', from: userId, to: frame.to, content: frame.content, id: frame.id }));
      if (frame.id !== undefined) conn.write(JSON.stringify({ type: 'ack', id: frame.id }));
    });
    conn.on('close', () => {
      if (connections.get(userId) === entry) connections.delete(userId);
    });
  });

  const server: Server = createServer((req, res) => {
    void (async () => {
      if (req.method === 'POST' && req.url === '/connect') {
        let body = '';
        for await (const chunk of req) body += String(chunk);
        const parsed = JSON.parse(body) as { userId: string; avoid?: string[] };
        connectCalls.push(parsed);
        const listeningKey = randomBytes(16).toString('base64url');
        keys.set(parsed.userId, listeningKey);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ userId: parsed.userId, listeningAddress: `${url}/ws`, listeningKey, acked: false, nodeId }));
        return;
      }
      const file = req.url === '/' ? 'index.html' : req.url?.startsWith('/static/') ? req.url.slice(8) : undefined;
      if (req.method === 'GET' && file && options.publicDir && /^[\w.-]+$/.test(file)) {
        try {
          const data = await readFile(join(options.publicDir, file));
          res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
          res.end(data);
          return;
        } catch {
          // fall through to 404
        }
      }
      res.writeHead(404).end();
    })();
  });
  sock.installHandlers(server, { prefix: '/ws' });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  url = `http://${host}:${(server.address() as AddressInfo).port}`;

  return {
    url,
    nodeId,
    connectCalls,
    connections,
    kick(userId, code, reason) {
      connections.get(userId)?.conn.close(String(code), reason);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const { conn } of connections.values()) conn.close('1001', 'going away');
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
