import { expect } from 'chai';
import { connect, type ConnectOptions } from './client.js';
import { MessagingError } from './errors.js';
import { FakeGateway, FakeSockJS, fakeClient, flush, welcomed } from './testing/fakes.js';

function setup(overrides: Partial<ConnectOptions> = {}) {
  const { clock, gateway, client } = fakeClient(overrides);
  const states: string[] = [];
  client.on('state', (state) => states.push(state));
  return { clock, gateway, client, states };
}

/** Starts the client and lets the first node welcome it. */
const started = (overrides: Partial<ConnectOptions> = {}) => welcomed(setup(overrides));

/** Marks a promise as handled now, so a rejection that happens while the clock ticks is not reported as unhandled. */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

async function rejection(promise: Promise<unknown>): Promise<MessagingError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(MessagingError);
    return error as MessagingError;
  }
  throw new Error('expected a rejection');
}

describe('MessagingClient', () => {
  describe('handshake', () => {
    it('posts /connect, opens SockJS with the session credentials and resolves on welcome', async () => {
      FakeSockJS.reset();
      const gateway = new FakeGateway(['node-x']);
      const sessions: unknown[] = [];
      const pending = connect({
        gatewayUrl: 'http://gw.test/',
        userId: 'alice',
        token: 'jwt-1',
        fetch: gateway.fetch,
        SockJS: FakeSockJS,
        pingIntervalMs: 0,
      });
      await flush();
      expect(gateway.calls).to.have.length(1);
      expect(gateway.calls[0]?.body).to.deep.equal({ userId: 'alice' });
      expect(gateway.calls[0]?.headers['authorization']).to.equal('Bearer jwt-1');
      expect(gateway.calls[0]?.headers['content-type']).to.equal('application/json');
      const socket = FakeSockJS.last;
      expect(socket.url.origin + socket.url.pathname).to.equal('http://node-x.test/ws');
      expect(socket.url.searchParams.get('userId')).to.equal('alice');
      expect(socket.url.searchParams.get('listeningKey')).to.equal('key-1');
      expect(socket.url.searchParams.get('coalesce'), 'the SDK reads ids, so it asks for coalesced RATE_LIMITED').to.equal('1');
      socket.welcome('node-x');
      const client = await pending;
      client.on('session', (s) => sessions.push(s));
      expect(client.state).to.equal('open');
      expect(client.nodeId).to.equal('node-x');
      client.close();
    });

    it('sends its room as the placement hint with every /connect', async () => {
      const h = await started({ room: 'standup' });
      FakeSockJS.last.serverClose(4000, 'node_shutdown');
      await h.clock.tick(10_000);
      expect(h.gateway.calls.map((c) => (c.body as { room?: string }).room)).to.deep.equal(['standup', 'standup']);
      h.client.close();
    });

    it('asks getToken before every /connect', async () => {
      let n = 0;
      const h = await started({ getToken: async () => `t${++n}` });
      FakeSockJS.last.serverClose(4001, 'session_expired');
      await h.clock.tick(10_000);
      expect(h.gateway.calls.map((c) => c.headers['authorization'])).to.deep.equal(['Bearer t1', 'Bearer t2']);
      h.client.close();
    });

    it('rejects connect() with the contract code of a 4xx from /connect and stops', async () => {
      const h = setup();
      h.gateway.script.push({ status: 400, body: { error: { code: 'INVALID_USER_ID', message: 'bad userId' } } });
      const closed: unknown[] = [];
      h.client.on('closed', (info) => closed.push(info));
      const error = await rejection(h.client.start());
      expect(error.code).to.equal('INVALID_USER_ID');
      expect(error.status).to.equal(400);
      expect(h.client.state).to.equal('closed');
      expect(closed).to.have.length(1);
      expect(closed[0]).to.deep.include({ reason: 'connect_rejected', code: 400 });
      await h.clock.tick(60_000);
      expect(h.gateway.calls).to.have.length(1);
    });

    it('retries 503 and an unreachable gateway with backoff, reporting each failure as an error event', async () => {
      const h = setup();
      h.gateway.script.push(
        { status: 503, body: { error: { code: 'NO_NODE_AVAILABLE', message: 'none' } } },
        new TypeError('fetch failed'),
      );
      const errors: string[] = [];
      h.client.on('error', (e) => errors.push(e.code));
      const ready = h.client.start();
      await flush();
      expect(h.clock.delays()).to.include(125); // attempt 0: 0.5 × 250
      await h.clock.tick(125);
      expect(h.gateway.calls).to.have.length(2);
      expect(h.clock.delays()).to.include(250); // attempt 1: 0.5 × 500
      await h.clock.tick(250);
      expect(h.gateway.calls).to.have.length(3);
      FakeSockJS.last.welcome('node-a');
      await ready;
      expect(errors).to.deep.equal(['NO_NODE_AVAILABLE', 'GATEWAY_UNREACHABLE']);
      expect(h.states).to.deep.equal(['open']);
      h.client.close();
    });

    it('gives up after connectTimeoutMs without a welcome', async () => {
      const h = setup({ connectTimeoutMs: 5000 });
      const ready = handled(h.client.start());
      await h.clock.tick(5000);
      expect((await rejection(ready)).code).to.equal('TIMEOUT');
      expect(h.client.state).to.equal('closed');
    });

    it('treats a node that never welcomes as unreachable and avoids it', async () => {
      const h = setup({ handshakeTimeoutMs: 1000 });
      const ready = h.client.start();
      await h.clock.tick(1000);
      expect(FakeSockJS.instances[0]?.closedByClient).to.equal(true);
      await h.clock.tick(200);
      expect(h.gateway.calls[1]?.body).to.deep.equal({ userId: 'alice', avoid: ['node-a'] });
      FakeSockJS.last.welcome('node-b');
      await ready;
      expect(h.client.nodeId).to.equal('node-b');
      h.client.close();
    });
  });

  describe('send', () => {
    it('resolves on ack and rejects with the code of an error frame', async () => {
      const h = await started();
      const socket = FakeSockJS.last;
      const ok = h.client.send('bob', { text: 'hi' });
      const bad = h.client.send('carol', 1);
      const [first, second] = socket.messages();
      expect(first).to.deep.equal({ type: 'message', to: 'bob', content: { text: 'hi' }, id: first?.['id'] });
      socket.receive({ type: 'ack', id: first?.['id'] });
      socket.receive({ type: 'error', code: 'PEER_UNAVAILABLE', message: 'no session', id: second?.['id'] });
      await ok;
      const error = await rejection(bad);
      expect(error.code).to.equal('PEER_UNAVAILABLE');
      expect(error.messageId).to.equal(second?.['id']);
      expect(h.client.inflightCount).to.equal(0);
      h.client.close();
    });

    it('rejects every send named in the ids of one RATE_LIMITED error', async () => {
      const h = await started();
      const socket = FakeSockJS.last;
      const sends = [1, 2, 3].map((n) => h.client.send('bob', n));
      const ids = socket.messages().map((m) => m['id'] as string);
      socket.receive({ type: 'error', code: 'RATE_LIMITED', message: 'rate limit exceeded', id: ids[0], ids });
      const errors = await Promise.all(sends.map(rejection));
      expect(errors.map((e) => [e.code, e.messageId])).to.deep.equal(ids.map((id) => ['RATE_LIMITED', id]));
      expect(h.client.inflightCount).to.equal(0);
      h.client.close();
    });

    it('rejects with TIMEOUT when neither ack nor error arrives', async () => {
      const h = await started({ sendTimeoutMs: 15_000 });
      const pending = handled(h.client.send('bob', 'x'));
      await h.clock.tick(14_999);
      expect(h.client.inflightCount).to.equal(1);
      await h.clock.tick(1);
      expect((await rejection(pending)).code).to.equal('TIMEOUT');
      expect(h.client.inflightCount).to.equal(0);
      h.client.close();
    });

    it('rejects an oversized frame locally', async () => {
      const h = await started({ maxMessageBytes: 100 });
      expect((await rejection(h.client.send('bob', 'x'.repeat(200)))).code).to.equal('MESSAGE_TOO_LARGE');
      expect(FakeSockJS.last.messages()).to.have.length(0);
      h.client.close();
    });

    it('emits message events with the stamped sender', async () => {
      const h = await started();
      const received: unknown[] = [];
      h.client.on('message', (m) => received.push(m));
      FakeSockJS.last.receive({ type: 'message', from: 'bob', to: 'alice', content: { a: 1 }, id: '7' });
      expect(received).to.deep.equal([{ from: 'bob', to: 'alice', content: { a: 1 }, id: '7' }]);
      h.client.close();
    });

    it('reports an error frame without an id as an error event', async () => {
      const h = await started();
      const errors: string[] = [];
      h.client.on('error', (e) => errors.push(e.code));
      FakeSockJS.last.receive({ type: 'error', code: 'MESSAGE_TOO_LARGE', message: 'too large' });
      expect(errors).to.deep.equal(['MESSAGE_TOO_LARGE']);
      h.client.close();
    });
  });

  describe('queue', () => {
    it('holds sends made while reconnecting and flushes them in order after the welcome', async () => {
      const h = await started();
      FakeSockJS.last.serverClose(4001, 'session_expired');
      expect(h.client.state).to.equal('reconnecting');
      const sends = [1, 2, 3].map((n) => h.client.send('bob', n));
      expect(h.client.queuedCount).to.equal(3);
      await h.clock.tick(1000);
      const socket = FakeSockJS.last;
      expect(socket.messages()).to.have.length(0);
      socket.welcome('node-b');
      expect(socket.messages().map((m) => m['content'])).to.deep.equal([1, 2, 3]);
      for (const m of socket.messages()) socket.receive({ type: 'ack', id: m['id'] });
      await Promise.all(sends);
      expect(h.states).to.deep.equal(['open', 'reconnecting', 'open']);
      h.client.close();
    });

    it('queues sends made before the first welcome', async () => {
      const h = setup();
      const ready = h.client.start();
      const sent = h.client.send('bob', 'early');
      await flush();
      FakeSockJS.last.welcome('node-a');
      await ready;
      const [frame] = FakeSockJS.last.messages();
      expect(frame?.['content']).to.equal('early');
      FakeSockJS.last.receive({ type: 'ack', id: frame?.['id'] });
      await sent;
      h.client.close();
    });

    it('rejects sends beyond maxQueue with SEND_QUEUE_FULL and keeps the queued ones', async () => {
      const h = await started({ maxQueue: 2 });
      FakeSockJS.last.serverClose(4002, 'store_unavailable');
      const kept = [h.client.send('bob', 'a'), h.client.send('bob', 'b')];
      expect((await rejection(h.client.send('bob', 'c'))).code).to.equal('SEND_QUEUE_FULL');
      expect(h.client.queuedCount).to.equal(2);
      h.client.close();
      for (const p of kept) expect((await rejection(p)).code).to.equal('CLOSED');
    });

    it('with resendUnanswered: false (v1), rejects in-flight sends with CONNECTION_LOST on a drop and does not resend them', async () => {
      const h = await started({ resendUnanswered: false });
      const inflight = h.client.send('bob', 'maybe');
      FakeSockJS.last.serverClose(1006, 'connection lost');
      expect((await rejection(inflight)).code).to.equal('CONNECTION_LOST');
      await h.clock.tick(1000);
      FakeSockJS.last.welcome('node-b');
      expect(FakeSockJS.last.messages()).to.have.length(0);
      h.client.close();
    });

    it('re-sends a send left unanswered by a drop after the next welcome, with the same id, before newer sends (v1.1)', async () => {
      const h = await started();
      const first = h.client.send('bob', 'maybe');
      const firstId = FakeSockJS.last.messages()[0]?.['id'];
      FakeSockJS.last.serverClose(1006, 'connection lost');
      const second = h.client.send('bob', 'later');
      await h.clock.tick(1000);
      FakeSockJS.last.welcome('node-b');
      const resent = FakeSockJS.last.messages();
      expect(resent.map((m) => [m['id'], m['content']])).to.deep.equal([
        [firstId, 'maybe'],
        [resent[1]?.['id'], 'later'],
      ]);
      expect(resent[1]?.['id']).to.not.equal(firstId);
      for (const m of resent) FakeSockJS.last.receive({ type: 'ack', id: m['id'] });
      await Promise.all([first, second]);
      h.client.close();
    });

    it('fails a re-queued send with CONNECTION_LOST when a terminal close ends the client', async () => {
      const h = await started();
      const inflight = h.client.send('bob', 'maybe');
      FakeSockJS.last.serverClose(4503, 'session_replaced');
      expect((await rejection(inflight)).code).to.equal('CONNECTION_LOST');
    });

    it('delivers a (from, id) once and drops its repeats; id-less messages always pass', async () => {
      const h = await started();
      const got: unknown[] = [];
      h.client.on('message', (m) => got.push(m.content));
      const socket = FakeSockJS.last;
      for (const [id, content] of [['x1', 1], ['x2', 2], ['x1', 1], ['x3', 3], ['x2', 2]] as const) {
        socket.receive({ type: 'message', from: 'bob', to: 'alice', content, id });
      }
      socket.receive({ type: 'message', from: 'carol', to: 'alice', content: 'c', id: 'x1' });
      socket.receive({ type: 'message', from: 'bob', to: 'alice', content: 'plain' });
      socket.receive({ type: 'message', from: 'bob', to: 'alice', content: 'plain' });
      expect(got).to.deep.equal([1, 2, 3, 'c', 'plain', 'plain']);
      expect(h.client.repeatsDropped).to.equal(2);
      h.client.close();
    });

    it('times out a send that waits too long in the queue', async () => {
      const h = await started({ sendTimeoutMs: 3000 });
      FakeSockJS.last.serverClose(4002, 'store_unavailable');
      h.gateway.script.push(...Array.from({ length: 10 }, () => new TypeError('fetch failed')));
      const pending = handled(h.client.send('bob', 'late'));
      await h.clock.tick(3000);
      expect((await rejection(pending)).code).to.equal('TIMEOUT');
      expect(h.client.queuedCount).to.equal(0);
      h.client.close();
    });
  });

  describe('reconnect', () => {
    it('comes back at once without an avoid list after a drain (4000)', async () => {
      const h = await started();
      FakeSockJS.last.serverClose(4000, 'node_shutdown');
      await flush();
      const delays = h.clock.delays();
      expect(delays).to.have.length(1);
      expect(delays[0]).to.be.below(250);
      await h.clock.tick(250);
      expect(h.gateway.calls[1]?.body).to.deep.equal({ userId: 'alice' });
      FakeSockJS.last.welcome('node-b');
      expect(h.client.nodeId).to.equal('node-b');
      h.client.close();
    });

    it('avoids the node after network loss', async () => {
      const h = await started();
      FakeSockJS.last.serverClose(1006, 'connection lost');
      await h.clock.tick(1000);
      expect(h.gateway.calls[1]?.body).to.deep.equal({ userId: 'alice', avoid: ['node-a'] });
      h.client.close();
    });

    it('grows the delay across consecutive failures and resets it after a welcome', async () => {
      const h = await started({ random: () => 0.999 });
      h.gateway.script.push(...Array.from({ length: 4 }, () => new TypeError('fetch failed')));
      FakeSockJS.last.serverClose(4002, 'store_unavailable');
      const observed: number[] = [];
      for (let i = 0; i < 5; i++) {
        await flush();
        const [delay] = h.clock.delays();
        observed.push(delay ?? -1);
        await h.clock.tick(delay ?? 0);
      }
      expect(observed).to.deep.equal([249, 499, 999, 1998, 3996]);
      FakeSockJS.last.welcome('node-a');
      FakeSockJS.last.serverClose(4002, 'store_unavailable');
      expect(h.clock.delays()).to.deep.equal([249]);
      h.client.close();
    });

    for (const [code, reason] of [
      [4500, 'invalid_credentials'],
      [4501, 'wrong_node'],
      [4502, 'key_already_used'],
      [4503, 'session_replaced'],
      [4504, 'protocol_violation'],
    ] as const) {
      it(`stops on ${code} with reason ${reason}`, async () => {
        const h = await started();
        const closed: unknown[] = [];
        h.client.on('closed', (info) => closed.push(info));
        const queued = h.client.send('bob', 1);
        FakeSockJS.last.serverClose(code, reason);
        expect(h.client.state).to.equal('closed');
        expect(closed).to.have.length(1);
        expect(closed[0]).to.deep.include({ reason, code });
        expect((await rejection(queued)).code).to.equal('CONNECTION_LOST');
        await h.clock.tick(60_000);
        expect(h.gateway.calls).to.have.length(1);
        expect((await rejection(h.client.send('bob', 2))).code).to.equal('CLOSED');
      });
    }

    it('rejects connect() when the first connection is refused with a terminal code', async () => {
      const h = setup();
      const ready = h.client.start();
      await flush();
      FakeSockJS.last.serverClose(4500, 'invalid_credentials');
      const error = await rejection(ready);
      expect(error.code).to.equal('CONNECTION_REJECTED');
      expect(error.closeCode).to.equal(4500);
    });
  });

  describe('ping', () => {
    it('keeps the connection while pongs come back', async () => {
      const h = await started({ pingIntervalMs: 1000, pingTimeoutMs: 500 });
      const socket = FakeSockJS.last;
      for (let i = 0; i < 3; i++) {
        await h.clock.tick(1000);
        const ping = socket.sent.at(-1);
        expect(ping?.['type']).to.equal('ping');
        socket.receive({ type: 'pong', id: ping?.['id'] });
      }
      await h.clock.tick(400);
      expect(socket.sent.filter((f) => f['type'] === 'ping')).to.have.length(3);
      expect(h.client.state).to.equal('open');
      expect(h.gateway.calls).to.have.length(1);
      h.client.close();
    });

    it('counts a rate-limited ping as an answer: the connection stays, and the app sees no error for it', async () => {
      const h = await started({ pingIntervalMs: 1000, pingTimeoutMs: 500 });
      const socket = FakeSockJS.last;
      const errors: unknown[] = [];
      h.client.on('error', (error) => errors.push(error));
      const sent = handled(h.client.send('bob', 'x'));
      const message = socket.sent.at(-1);
      await h.clock.tick(1000);
      const ping = socket.sent.at(-1);
      expect(ping?.['type']).to.equal('ping');
      // One RATE_LIMITED for a burst: the app's message first, the ping among `ids`.
      socket.receive({ type: 'error', code: 'RATE_LIMITED', message: 'slow down', id: message?.['id'], ids: [message?.['id'], ping?.['id']] });
      await h.clock.tick(1000);
      expect(h.client.state).to.equal('open');
      expect(socket.closedByClient).to.equal(false);
      expect((await rejection(sent)).code).to.equal('RATE_LIMITED');
      // The next ping is its own burst's only id.
      const next = socket.sent.at(-1);
      expect(next?.['type']).to.equal('ping');
      expect(next?.['id']).to.not.equal(ping?.['id']);
      socket.receive({ type: 'error', code: 'RATE_LIMITED', message: 'slow down', id: next?.['id'], ids: [next?.['id']] });
      await h.clock.tick(999);
      expect(h.client.state).to.equal('open');
      expect(errors).to.deep.equal([]);
      expect(h.gateway.calls).to.have.length(1);
      h.client.close();
    });

    it('gives every client its own message ids, whatever `random` the app pins for jitter', async () => {
      const a = await started({ random: () => 0.5 });
      const first = FakeSockJS.last;
      void handled(a.client.send('bob', 'x'));
      const b = await started({ random: () => 0.5 });
      const second = FakeSockJS.last;
      void handled(b.client.send('bob', 'x'));
      const idOf = (socket: FakeSockJS): unknown => socket.sent.filter((f) => f['type'] === 'message').at(-1)?.['id'];
      expect(idOf(first)).to.be.a('string');
      expect(idOf(first)).to.not.equal(idOf(second));
      a.client.close();
      b.client.close();
    });

    it('treats a missing pong as a dead connection and reconnects avoiding the node', async () => {
      const h = await started({ pingIntervalMs: 1000, pingTimeoutMs: 500, resendUnanswered: false });
      const socket = FakeSockJS.last;
      const inflight = handled(h.client.send('bob', 'x'));
      await h.clock.tick(1499);
      expect(h.client.state).to.equal('open');
      await h.clock.tick(1);
      expect(h.client.state).to.equal('reconnecting');
      expect(socket.closedByClient).to.equal(true);
      expect((await rejection(inflight)).code).to.equal('CONNECTION_LOST');
      await h.clock.tick(1000);
      expect(h.gateway.calls[1]?.body).to.deep.equal({ userId: 'alice', avoid: ['node-a'] });
      h.client.close();
    });
  });

  describe('close', () => {
    it('stops without reconnecting and rejects pending sends with CLOSED', async () => {
      const h = await started();
      const socket = FakeSockJS.last;
      const inflight = h.client.send('bob', 1);
      const closed: unknown[] = [];
      h.client.on('closed', (info) => closed.push(info));
      h.client.close();
      expect(socket.closedByClient).to.equal(true);
      expect((await rejection(inflight)).code).to.equal('CLOSED');
      expect(closed).to.deep.equal([{ reason: 'client' }]);
      expect(h.states.at(-1)).to.equal('closed');
      await h.clock.tick(60_000);
      expect(h.gateway.calls).to.have.length(1);
      expect(h.clock.pending).to.equal(0);
    });
  });
});
