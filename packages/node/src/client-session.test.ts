import { expect } from 'chai';
import { silentLogger } from '@messaging-server/core';
import type { ClientConnection } from './client-connection.js';
import { ClientSession, type SessionLimits } from './client-session.js';
import type { Envelope } from './envelope.js';

/** A connection that takes every write (as sockjs does until its close completes) and reports what it holds. */
class FakeConnection implements ClientConnection {
  readonly url = '/ws/websocket?userId=alice&listeningKey=k';
  readonly remoteAddress = '127.0.0.1';
  readonly written: string[] = [];
  closed: { code: number; reason: string } | undefined;
  unread = 0;
  get buffered(): number {
    return this.unread;
  }
  write(text: string): boolean {
    this.written.push(text);
    this.unread += text.length;
    return true;
  }
  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
  }
  listen(): void {}
}

const limits: SessionLimits = { rateMessagesPerSecond: 10, rateBurst: 10, rateBytesPerSecond: 1 << 20, bytesBurst: 1 << 20, maxBufferedBytes: 1000 };
const counters = { ack: (): void => undefined, error: (): void => undefined, closed: (): void => undefined };
const message = (content: string): Envelope => ({ from: 'bob', to: 'alice', content, id: 'm', origin: { kind: 'local', cid: 'c' }, size: content.length });

describe('ClientSession', () => {
  it('writes nothing, and delivers nothing, once it is closing', () => {
    const conn = new FakeConnection();
    const session = new ClientSession(conn, limits, counters, silentLogger);
    session.close('node_shutdown');
    expect(conn.closed).to.deep.equal({ code: 4000, reason: 'node_shutdown' });
    expect(session.writeMessage(message('late'))).to.equal(false);
    session.sendAck('m1');
    session.sendError('PEER_UNAVAILABLE', 'x', 'm2');
    expect(conn.written).to.deep.equal([]);
  });

  it('closes with 4005 slow_consumer instead of writing past maxBufferedBytes unread', () => {
    const conn = new FakeConnection();
    const session = new ClientSession(conn, limits, counters, silentLogger);
    expect(session.writeMessage(message('a'.repeat(500)))).to.equal(true);
    expect(session.writeMessage(message('b'.repeat(500)))).to.equal(false);
    expect(conn.closed).to.deep.equal({ code: 4005, reason: 'slow_consumer' });
    expect(conn.written).to.have.length(1);
    conn.unread = 0;
    expect(session.writeMessage(message('c'))).to.equal(false);
  });

  it('answers each rate-limited id with its own error by default (v1), and the id-less ones of a turn with one', async () => {
    const conn = new FakeConnection();
    const session = new ClientSession(conn, { ...limits, maxBufferedBytes: 1 << 20 }, counters, silentLogger);
    for (const id of ['r1', undefined, 'r2', undefined]) session.rateLimited(id, 'rate limit exceeded');
    await new Promise((resolve) => setImmediate(resolve));
    expect(conn.written.map((t) => JSON.parse(t) as unknown)).to.deep.equal([
      { type: 'error', code: 'RATE_LIMITED', message: 'rate limit exceeded', id: 'r1' },
      { type: 'error', code: 'RATE_LIMITED', message: 'rate limit exceeded', id: 'r2' },
      { type: 'error', code: 'RATE_LIMITED', message: 'rate limit exceeded' },
    ]);
  });

  it('answers the rate-limited frames of one event-loop turn with one error naming every id, once the client opted in', async () => {
    const conn = new FakeConnection();
    const session = new ClientSession(conn, { ...limits, maxBufferedBytes: 1 << 20 }, counters, silentLogger);
    session.coalescesRefusals = true;
    for (const id of ['r1', undefined, 'r2', 'r3']) session.rateLimited(id, 'rate limit exceeded');
    await new Promise((resolve) => setImmediate(resolve));
    session.rateLimited(undefined, 'rate limit exceeded');
    await new Promise((resolve) => setImmediate(resolve));
    expect(conn.written.map((t) => JSON.parse(t) as unknown)).to.deep.equal([
      { type: 'error', code: 'RATE_LIMITED', message: 'rate limit exceeded', id: 'r1', ids: ['r1', 'r2', 'r3'] },
      { type: 'error', code: 'RATE_LIMITED', message: 'rate limit exceeded' },
    ]);
  });
});
