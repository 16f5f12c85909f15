import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect as connectTcp } from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import WebSocket from 'ws';
import { waitFor } from '@messaging-server/testkit';
import type { ClientConnection } from './client-connection.js';
import { createWsTransport, type WsTransport } from './ws-transport.js';

interface Accepted {
  conn: ClientConnection;
  data: string[];
  closes: number;
}

interface Peer {
  ws: WebSocket;
  frames: string[];
  closed: Promise<{ code: number; reason: string }>;
}

describe('ws transport (SockJS websocket framing)', function () {
  let server: Server;
  let transport: WsTransport;
  let port: number;
  const accepted: Accepted[] = [];

  before(async function () {
    server = createServer((_req, res) => res.writeHead(404).end());
    transport = createWsTransport({
      prefix: '/ws',
      maxPayload: 1024,
      heartbeatMs: 100,
      onConnection(conn) {
        const entry: Accepted = { conn, data: [], closes: 0 };
        conn.listen(
          (text) => entry.data.push(text),
          () => (entry.closes += 1),
        );
        accepted.push(entry);
      },
    });
    server.on('upgrade', (req, socket, head) => {
      if (!transport.handleUpgrade(req, socket, head)) socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async function () {
    transport.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function connect(path: string): Promise<{ peer: Peer; server: Accepted }> {
    const before = accepted.length;
    const ws = new WebSocket(`ws://127.0.0.1:${String(port)}${path}`);
    const frames: string[] = [];
    ws.on('message', (data: WebSocket.RawData) => frames.push(String(data)));
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.on('close', (code: number, reason: Buffer) => resolve({ code, reason: String(reason) })),
    );
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    await waitFor(() => accepted.length > before);
    return { peer: { ws, frames, closed }, server: accepted[accepted.length - 1] as Accepted };
  }

  it('opens with o, coalesces one turn of writes into one a-frame, and closes after a c-frame', async function () {
    const { peer, server: s } = await connect('/ws/123/abcdef/websocket?userId=alice');
    expect(s.conn.url).to.equal('/ws/123/abcdef/websocket?userId=alice');
    expect(s.conn.remoteAddress).to.equal('127.0.0.1');
    await waitFor(() => peer.frames.length === 1);
    expect(peer.frames[0]).to.equal('o');

    expect(s.conn.write('{"type":"ack","id":"1"}')).to.equal(true);
    s.conn.write('line\u2028"quoted"');
    await waitFor(() => peer.frames.length === 2);
    expect(peer.frames[1]).to.equal(`a${JSON.stringify(['{"type":"ack","id":"1"}', 'line\u2028"quoted"'])}`);

    peer.ws.send('["one","two"]');
    peer.ws.send('');
    peer.ws.send('"three"');
    await waitFor(() => s.data.length === 3);
    expect(s.data).to.deep.equal(['one', 'two', 'three']);

    s.conn.write('last');
    s.conn.close(4001, 'bye');
    expect(s.conn.write('after close')).to.equal(false);
    const closed = await peer.closed;
    expect(closed).to.deep.equal({ code: 4001, reason: 'bye' });
    expect(peer.frames.slice(2)).to.deep.equal(['a["last"]', 'c[4001,"bye"]']);
    await waitFor(() => s.closes === 1);
  });

  it('sends h to a connection that was silent for a heartbeat interval', async function () {
    const { peer, server: s } = await connect('/ws/1/hb/websocket');
    await waitFor(() => peer.frames.includes('h'), { timeoutMs: 5000 });
    s.conn.close(1000, 'done');
    await peer.closed;
  });

  it('closes with 3000 on a frame that is not JSON, and reports the close once', async function () {
    const { peer, server: s } = await connect('/ws/1/broken/websocket');
    peer.ws.send('not json');
    expect((await peer.closed).code).to.equal(3000);
    await waitFor(() => s.closes === 1);
    expect(s.data).to.deep.equal([]);
  });

  it('cuts a frame over maxPayload with 1009', async function () {
    const { peer, server: s } = await connect('/ws/1/big/websocket');
    peer.ws.send(JSON.stringify(['x'.repeat(2000)]));
    expect((await peer.closed).code).to.equal(1009);
    await waitFor(() => s.closes === 1);
  });

  it('serves the raw /websocket with plain text frames', async function () {
    const { peer, server: s } = await connect('/ws/websocket?userId=bob');
    peer.ws.send('{"type":"ping"}');
    await waitFor(() => s.data.length === 1);
    expect(s.data).to.deep.equal(['{"type":"ping"}']);
    s.conn.write('{"type":"pong"}');
    s.conn.write('second');
    await waitFor(() => peer.frames.length === 2);
    expect(peer.frames).to.deep.equal(['{"type":"pong"}', 'second']);
    s.conn.close(4000, 'node_shutdown');
    expect(await peer.closed).to.deep.equal({ code: 4000, reason: 'node_shutdown' });
    await waitFor(() => s.closes === 1);
  });

  // Last: it stops the transport's timers.
  it('cuts a client that does not answer its close once the transport stops', async function () {
    const before = accepted.length;
    const socket = connectTcp(port, '127.0.0.1');
    socket.write(
      `GET /ws/1/mute/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    // It reads (so it sees the end) but never answers a frame.
    socket.resume();
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await waitFor(() => accepted.length > before);
    const s = accepted[accepted.length - 1] as Accepted;
    s.conn.close(4000, 'node_shutdown');
    await waitFor(() => s.closes === 1);
    const stoppedAt = Date.now();
    transport.close(100);
    await ended;
    expect(Date.now() - stoppedAt).to.be.lessThan(5000);
  });

  it('leaves every other upgrade path alone', function () {
    for (const path of ['/ws/info', '/ws/a.b/c/websocket', '/other/1/2/websocket', '/ws/1/2/xhr_streaming']) {
      const req = { url: path } as Parameters<WsTransport['handleUpgrade']>[0];
      expect(transport.handleUpgrade(req, undefined as never, Buffer.alloc(0)), path).to.equal(false);
    }
  });
});
