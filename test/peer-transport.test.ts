import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { expect } from 'chai';
import { BackendError, UndiciPeerTransport } from '@messaging-server/core';
import { freePort, waitFor } from '@messaging-server/testkit';

interface Received {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingMessage['headers'];
  body: unknown;
}

type Handler = (request: Received, response: ServerResponse) => void;

/** A real HTTP server whose behaviour each test sets; it records every request it received, in order. */
class PeerServer {
  readonly received: Received[] = [];
  handler: Handler = (_request, response) => {
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ ok: true }));
  };
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  readonly connections: Socket[] = [];
  address = '';

  constructor() {
    this.server = createServer((request, response) => {
      let raw = '';
      request.setEncoding('utf8');
      request.on('data', (chunk: string) => (raw += chunk));
      request.on('end', () => {
        const received: Received = { method: request.method, url: request.url, headers: request.headers, body: raw === '' ? undefined : JSON.parse(raw) };
        this.received.push(received);
        this.handler(received, response);
      });
    });
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      this.connections.push(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const bound = this.server.address();
    this.address = `http://127.0.0.1:${String(typeof bound === 'object' && bound ? bound.port : 0)}`;
    return this;
  }

  get openSockets(): number {
    return this.sockets.size;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const MiB = 1 << 20;

/** Writes `total` bytes of answer as fast as the client takes them; resolves with what went out when done or cut. */
function floodAnswer(response: ServerResponse, total: number): Promise<number> {
  const chunk = Buffer.alloc(MiB, 0x20);
  let sent = 0;
  return new Promise((resolve) => {
    const pump = (): void => {
      while (sent < total && !response.destroyed) {
        sent += chunk.length;
        if (!response.write(chunk)) return;
      }
      if (sent >= total) response.end();
    };
    response.on('drain', pump);
    response.on('close', () => resolve(sent));
    pump();
  });
}

async function failure(promise: Promise<unknown>): Promise<{ error: BackendError; ms: number }> {
  const started = Date.now();
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(BackendError);
    return { error: error as BackendError, ms: Date.now() - started };
  }
  throw new Error('expected the request to fail');
}

describe('UndiciPeerTransport against a real HTTP server', function () {
  this.timeout(10_000);
  let peer: PeerServer;
  let transport: UndiciPeerTransport;

  beforeEach(async () => {
    peer = await new PeerServer().start();
    transport = new UndiciPeerTransport({ clusterSecret: 's3cret', timeoutMs: 500 });
  });
  afterEach(async () => {
    await transport.close();
    await peer.stop();
  });

  it('posts JSON and resolves with the JSON answer', async () => {
    peer.handler = (request, response) => {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ echo: request.body, path: request.url }));
    };
    const answer = await transport.post<{ echo: unknown; path: string }>(peer.address, '/internal/deliver', {
      to: 'bob',
      content: { n: [1, 'two', null] },
    });
    expect(answer).to.deep.equal({ echo: { to: 'bob', content: { n: [1, 'two', null] } }, path: '/internal/deliver' });
    expect(peer.received[0]?.method).to.equal('POST');
    expect(peer.received[0]?.headers['content-type']).to.equal('application/json');
  });

  it('resolves undefined for an empty 2xx answer', async () => {
    peer.handler = (_request, response) => {
      response.statusCode = 204;
      response.end();
    };
    expect(await transport.post(peer.address, '/internal/x', {})).to.equal(undefined);
  });

  it('sends the cluster secret on every request, and no header without one', async () => {
    await transport.post(peer.address, '/internal/a', {});
    await transport.post(peer.address, '/internal/b', {});
    expect(peer.received.map((r) => r.headers['x-cluster-secret'])).to.deep.equal(['s3cret', 's3cret']);

    const open = new UndiciPeerTransport({ timeoutMs: 500 });
    try {
      await open.post(peer.address, '/internal/c', {});
      expect(peer.received[2]?.headers).to.not.have.property('x-cluster-secret');
    } finally {
      await open.close();
    }
  });

  it('keeps one connection per peer and sends requests in call order', async () => {
    const order: number[] = [];
    peer.handler = (request, response) => {
      const n = (request.body as { n: number }).n;
      order.push(n);
      // Answer the early ones slowest: with reordering, later requests would overtake them.
      setTimeout(() => response.end(JSON.stringify({ n })), n < 5 ? 20 : 0);
    };
    const answers = await Promise.all(Array.from({ length: 20 }, (_, n) => transport.post<{ n: number }>(peer.address, '/internal/seq', { n })));
    expect(answers.map((a) => a.n)).to.deep.equal(Array.from({ length: 20 }, (_, n) => n));
    expect(order).to.deep.equal(Array.from({ length: 20 }, (_, n) => n));
    expect(peer.connections).to.have.length(1);
  });

  it('times out within its budget when the peer never answers', async () => {
    peer.handler = () => {};
    const { error, ms } = await failure(transport.post(peer.address, '/internal/slow', {}));
    expect(error.code).to.equal('PEER_TIMEOUT');
    expect(ms).to.be.within(400, 900);

    const short = await failure(transport.post(peer.address, '/internal/slow', {}, { timeoutMs: 150 }));
    expect(short.error.code).to.equal('PEER_TIMEOUT');
    expect(short.ms).to.be.within(100, 450);
  });

  it('reads at most a few MiB of a 400 MiB answer: PEER_REJECTED, the connection dropped, the next request on a new one', async () => {
    for (const framing of ['length', 'chunked'] as const) {
      const written = new Promise<number>((resolve) => {
        peer.handler = (request, response) => {
          if (request.url === '/internal/ok') return response.end('{"ok":true}');
          response.setHeader('content-type', 'application/json');
          if (framing === 'length') response.setHeader('content-length', String(400 * MiB));
          void floodAnswer(response, 400 * MiB).then(resolve);
        };
      });
      const { error, ms } = await failure(transport.post(peer.address, '/internal/huge', {}, { timeoutMs: 5000 }));
      const sent = await written;
      console.log(`      400 MiB answer (${framing}): ${error.code} after ${String(ms)} ms, peer got ${(sent / MiB).toFixed(1)} MiB out before the drop`);
      expect(error.code).to.equal('PEER_REJECTED');
      expect(error.message).to.include('size limit');
      expect(ms).to.be.below(1000);
      // 4 MiB read, plus what the kernel's socket buffers held when the transport hung up.
      expect(sent).to.be.below(16 * MiB);
      await waitFor(() => peer.openSockets === 0, { what: 'the dropped connection closed' });
      expect(await transport.post(peer.address, '/internal/ok', {})).to.deep.equal({ ok: true });
    }
  });

  it('still reaches the peer after a timed-out request', async () => {
    let first = true;
    peer.handler = (_request, response) => {
      if (first) {
        first = false;
        return;
      }
      response.end('{"ok":true}');
    };
    expect((await failure(transport.post(peer.address, '/internal/x', {}))).error.code).to.equal('PEER_TIMEOUT');
    expect(await transport.post(peer.address, '/internal/x', {})).to.deep.equal({ ok: true });
  });

  it('fails fast with PEER_UNREACHABLE on a refused port', async () => {
    const port = await freePort();
    const { error, ms } = await failure(transport.post(`http://127.0.0.1:${String(port)}`, '/internal/x', {}));
    expect(error.code).to.equal('PEER_UNREACHABLE');
    expect(ms).to.be.below(300);
  });

  it('rejects a non-2xx answer with PEER_REJECTED and its status', async () => {
    peer.handler = (_request, response) => {
      response.statusCode = 500;
      response.end('{"error":"boom"}');
    };
    const { error } = await failure(transport.post(peer.address, '/internal/x', {}));
    expect(error.code).to.equal('PEER_REJECTED');
    expect(error.status).to.equal(500);

    peer.handler = (_request, response) => {
      response.statusCode = 401;
      response.end();
    };
    const unauthorized = await failure(transport.post(peer.address, '/internal/x', {}));
    expect(unauthorized.error.code).to.equal('PEER_REJECTED');
    expect(unauthorized.error.status).to.equal(401);
  });

  it('rejects a 2xx answer that is not JSON with PEER_REJECTED', async () => {
    peer.handler = (_request, response) => response.end('not json');
    const { error } = await failure(transport.post(peer.address, '/internal/x', {}));
    expect(error.code).to.equal('PEER_REJECTED');
    expect(error.status).to.equal(200);
  });

  it('forget drops the pool of one peer; close ends every pool and refuses new requests', async () => {
    const other = await new PeerServer().start();
    try {
      await transport.post(peer.address, '/internal/x', {});
      await transport.post(other.address, '/internal/x', {});
      expect(transport.peerCount).to.equal(2);
      transport.forget(peer.address);
      expect(transport.peerCount).to.equal(1);
      await waitUntil(() => peer.openSockets === 0);

      await transport.close();
      await waitUntil(() => other.openSockets === 0);
      const { error } = await failure(transport.post(other.address, '/internal/x', {}));
      expect(error.code).to.equal('PEER_UNREACHABLE');
    } finally {
      await other.stop();
    }
  });
});

function waitUntil(predicate: () => boolean): Promise<unknown> {
  return waitFor(predicate, { timeoutMs: 2000, what: 'pool sockets to close' });
}
