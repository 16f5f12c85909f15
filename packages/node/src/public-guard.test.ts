import type { IncomingMessage, Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { silentLogger } from '@messaging-server/core';
import { createPublicServer, DEFAULT_PUBLIC_LIMITS, guardPublicServer, type PublicLimits } from './public-guard.js';

/** Sends raw bytes, returns what came back until the server closed (or 2 s passed). */
function raw(port: number, ...parts: (string | Buffer)[]): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('connect', () => {
      for (const part of parts) socket.write(part);
    });
    socket.on('data', (data: Buffer) => (text += data.toString('latin1')));
    const done = (): void => resolve(text);
    socket.on('close', done);
    socket.on('error', () => undefined);
    setTimeout(() => {
      socket.destroy();
    }, 2000).unref();
  });
}

describe('public guard', () => {
  let server: Server;
  let port: number;
  const seen: { url: string; chunks: number; body: string }[] = [];
  const limits: PublicLimits = { ...DEFAULT_PUBLIC_LIMITS, maxBodyBytes: 1000, maxHeaderCount: 10 };

  before(async () => {
    server = createPublicServer(limits);
    guardPublicServer(
      server,
      {
        prefix: '/ws',
        request(req: IncomingMessage, res) {
          let chunks = 0;
          let body = '';
          req.on('data', (chunk: Buffer) => {
            chunks += 1;
            body += chunk.toString('utf8');
          });
          req.on('end', () => {
            seen.push({ url: req.url ?? '', chunks, body });
            res.end('ok');
          });
        },
        upgrade: () => false,
      },
      limits,
      silentLogger,
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('answers a request inside the prefix and 404 outside it, closing the connection', async () => {
    expect(await raw(port, 'GET /ws/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).to.match(/^HTTP\/1\.1 200/);
    const outside = await raw(port, 'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(outside).to.match(/^HTTP\/1\.1 404/);
    expect(outside).to.match(/"code":"NOT_FOUND"/);
    expect(outside).to.match(/connection: close/i);
  });

  it('refuses absolute-form targets, other methods, too many headers and long targets', async () => {
    expect(await raw(port, 'GET http://x/ws/info HTTP/1.1\r\nHost: x\r\n\r\n')).to.match(/^HTTP\/1\.1 400[^]*INVALID_REQUEST/);
    const put = await raw(port, 'PUT /ws/info HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(put).to.match(/^HTTP\/1\.1 405/);
    expect(put).to.match(/allow: GET, HEAD, POST, OPTIONS/i);
    const headers = Array.from({ length: 11 }, (_, i) => `X-H${String(i)}: v\r\n`).join('');
    expect(await raw(port, `GET /ws/info HTTP/1.1\r\nHost: x\r\n${headers}\r\n`)).to.match(/^HTTP\/1\.1 400[^]*too many headers/);
    expect(await raw(port, `GET /ws/${'a'.repeat(5000)} HTTP/1.1\r\nHost: x\r\n\r\n`)).to.match(/^HTTP\/1\.1 400[^]*too long/);
  });

  it('refuses a body over the limit by its Content-Length without reading it, or once a chunked one gets there', async () => {
    expect(await raw(port, 'POST /ws/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n')).to.match(/^HTTP\/1\.1 413[^]*PAYLOAD_TOO_LARGE/);
    const before = seen.length;
    const chunked = await raw(port, 'POST /ws/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', '3e8\r\n', 'a'.repeat(1000), '\r\n', '1\r\nb\r\n');
    expect(chunked).to.match(/^HTTP\/1\.1 413/);
    expect(seen.length).to.equal(before);
  });

  it('hands a body within the limit to the route in one chunk, however it was trickled in', async () => {
    const parts = Array.from({ length: 50 }, () => '14\r\n' + 'c'.repeat(20) + '\r\n');
    const answer = await raw(port, 'POST /ws/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n', ...parts, '0\r\n\r\n');
    expect(answer).to.match(/^HTTP\/1\.1 200/);
    expect(seen.at(-1)).to.deep.equal({ url: '/ws/x', chunks: 1, body: 'c'.repeat(1000) });
  });

  it('answers and closes every upgrade no route takes', async () => {
    const upgrade = (target: string): string =>
      `GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    expect(await raw(port, upgrade('/nope'))).to.match(/^HTTP\/1\.1 404/);
    expect(await raw(port, upgrade('/ws/000/abc/xhr_streaming'))).to.match(/^HTTP\/1\.1 404/);
    expect(await raw(port, upgrade('http://x/ws/websocket'))).to.match(/^HTTP\/1\.1 400/);
  });
});
