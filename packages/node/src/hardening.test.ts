import { expect } from 'chai';
import WebSocket from 'ws';
import type { ServerFrame, SessionRecord } from '@messaging-server/protocol';
import { waitFor } from '@messaging-server/testkit';
import { TestWorld, type TestNode } from './testing/test-world.js';

/** A raw WebSocket on the sockjs `/websocket` endpoint, recording frames and the close code. */
function rawSocket(node: TestNode, session: SessionRecord, headers: Record<string, string> = {}, extraQuery = '') {
  const url = `ws://127.0.0.1:${String(node.publicPort)}/ws/websocket?userId=${session.userId}&listeningKey=${session.listeningKey}${extraQuery}`;
  const ws = new WebSocket(url, { headers });
  const frames: ServerFrame[] = [];
  let close: { code: number; reason: string } | undefined;
  ws.on('message', (data) => frames.push(JSON.parse(String(data)) as ServerFrame));
  ws.on('close', (code, reason) => (close = { code, reason: String(reason) }));
  ws.on('error', () => undefined);
  return {
    ws,
    frames,
    closed: async () => {
      await waitFor(() => close !== undefined, { what: 'close', timeoutMs: 10_000 });
      return close as { code: number; reason: string };
    },
  };
}

describe('relay node hardening', function () {
  this.timeout(20_000);
  let world: TestWorld;

  beforeEach(() => {
    world = new TestWorld();
  });
  afterEach(async () => {
    await world.close();
  });

  it('refuses handshakes past MSG_MAX_CONNECTIONS with 4003 and publishes its capacity', async function () {
    const node = await world.startNode('node-a', { MSG_MAX_CONNECTIONS: '2' });
    await world.online('u1', node);
    await world.online('u2', node);
    const third = world.socket(await world.session('u3', node));
    expect(await third.closed()).to.deep.equal({ code: 4003, reason: 'node_full' });
    await waitFor(async () => (await world.registry.list()).loads.get('node-a')?.connections === 2, { what: 'load report' });
    expect((await world.registry.list()).loads.get('node-a')?.maxConnections).to.equal(2);
  });

  it('refuses a SockJS handshake from an origin outside MSG_ALLOWED_ORIGINS with 4505, allows listed and absent origins', async function () {
    const node = await world.startNode('node-a', { MSG_ALLOWED_ORIGINS: 'https://app.example.com' });
    const evil = rawSocket(node, await world.session('u1', node), { origin: 'https://evil.example.com' });
    expect(await evil.closed()).to.deep.equal({ code: 4505, reason: 'origin_not_allowed' });
    const listed = rawSocket(node, await world.session('u2', node), { origin: 'https://app.example.com' });
    await waitFor(() => listed.frames[0]?.type === 'welcome', { what: 'welcome' });
    const none = rawSocket(node, await world.session('u3', node));
    await waitFor(() => none.frames[0]?.type === 'welcome', { what: 'welcome' });
    listed.ws.close();
    none.ws.close();
    // The node marks a refused origin with a query parameter of its own. A client cannot lift the mark by sending
    // that parameter itself (any value): it only ever refuses, from a disallowed origin and from an allowed one.
    for (const [user, origin, value] of [
      ['u4', 'https://evil.example.com', ''],
      ['u5', 'https://evil.example.com', '0'],
      ['u6', 'https://app.example.com', 'false'],
    ] as const) {
      const forged = rawSocket(node, await world.session(user, node), { origin }, `&msg_origin_denied=${value}`);
      expect(await forged.closed(), `${origin} with msg_origin_denied=${value}`).to.deep.equal({ code: 4505, reason: 'origin_not_allowed' });
      expect(forged.frames.filter((f) => f.type === 'welcome'), `${origin} welcomed`).to.deep.equal([]);
    }
  });

  it('refuses the transports browsers use without Origin (jsonp, htmlfile, iframe) while MSG_ALLOWED_ORIGINS is a list', async function () {
    const node = await world.startNode('node-a', { MSG_ALLOWED_ORIGINS: 'https://app.example.com' });
    const session = await world.session('u1', node);
    const query = `userId=u1&listeningKey=${session.listeningKey}`;
    const base = `http://127.0.0.1:${String(node.publicPort)}/ws`;
    const answers = [
      await fetch(`${base}/000/s1/jsonp?c=cb&${query}`),
      await fetch(`${base}/000/s2/htmlfile?c=cb&${query}`),
      await fetch(`${base}/000/s3/jsonp_send?c=cb`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'd=%5B%22x%22%5D' }),
      await fetch(`${base}/iframe.html`),
      await fetch(`${base}/iframe-abc.html`),
    ];
    for (const answer of answers) {
      expect(answer.status, answer.url).to.equal(403);
      expect(await answer.json()).to.deep.include({ error: { code: 'ORIGIN_NOT_ALLOWED', message: 'this transport is off while MSG_ALLOWED_ORIGINS is a list' } });
    }
    // Nothing was opened: the session is still un-acked.
    expect((await world.sessions.get('u1'))?.acked).to.equal(false);
    // The transports that carry Origin still work for a listed origin.
    const listed = await fetch(`${base}/000/s4/xhr?${query}`, { method: 'POST', headers: { origin: 'https://app.example.com' } });
    expect(await listed.text()).to.equal('o\n');
  });

  it('answers a send with no payload or broken JSON with 400, not the 500 sockjs gives it', async function () {
    const node = await world.startNode('node-a');
    const base = `http://127.0.0.1:${String(node.publicPort)}/ws/000/nosession`;
    const empty = await fetch(`${base}/xhr_send`, { method: 'POST' });
    expect([empty.status, await empty.text()]).to.deep.equal([400, 'Payload expected.']);
    const broken = await fetch(`${base}/xhr_send`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '[not json' });
    expect([broken.status, await broken.text()]).to.deep.equal([400, 'Broken JSON encoding.']);
    const unknown = await fetch(`${base}/xhr_send`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '["x"]' });
    expect(unknown.status).to.equal(404);
  });

  it('keeps jsonp and htmlfile with MSG_ALLOWED_ORIGINS=*', async function () {
    const node = await world.startNode('node-a');
    const answer = await fetch(`http://127.0.0.1:${String(node.publicPort)}/ws/000/s1/jsonp?c=cb`);
    expect(answer.status).to.equal(200);
    expect(await answer.text()).to.match(/^\/\*\*\/cb\("o"\);/);
  });

  it('closes a connection that sent nothing for MSG_IDLE_TIMEOUT_SECONDS with 4004, and keeps one that pings', async function () {
    const node = await world.startNode('node-a', { MSG_IDLE_TIMEOUT_SECONDS: '2' });
    const { socket: idle } = await world.online('idle', node);
    const { socket: busy } = await world.online('busy', node);
    const timer = setInterval(() => busy.send({ type: 'ping' }), 500);
    try {
      expect(await idle.closed()).to.deep.equal({ code: 4004, reason: 'idle_timeout' });
      busy.send({ type: 'ping', id: 'alive' });
      await busy.waitForFrame((f) => f.type === 'pong' && f.id === 'alive');
    } finally {
      clearInterval(timer);
    }
  });

  it('acks a session with compare-and-set: a /connect that replaced it during the handshake keeps its newer session', async function () {
    const node = await world.startNode('node-a');
    const old = await world.session('alice', node);
    type Update = (current: SessionRecord) => SessionRecord | undefined;
    const store = world.sessions as unknown as { updateIfMatches: (userId: string, key: string, update: Update, ttl: number) => Promise<boolean> };
    const original = store.updateIfMatches.bind(world.sessions);
    let looked = false;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // A store whose read and write are two calls (memcached's get and cas): the handshake's update runs on the read,
    // and the write happens after the gate, under the record the read saw.
    store.updateIfMatches = async (userId, key, update, ttl) => {
      const read = await world.sessions.get(userId);
      const next = read && read.listeningKey === key ? update(read) : undefined;
      looked = true;
      await gate;
      return next !== undefined && original(userId, key, (current) => (current.listeningKey === read?.listeningKey ? next : undefined), ttl);
    };
    try {
      const socket = world.socket(old);
      await waitFor(() => looked, { what: 'the handshake read the session' });
      const newer = await world.session('alice', node);
      release();
      expect(await socket.closed()).to.deep.equal({ code: 4503, reason: 'session_replaced' });
      expect(await world.sessions.get('alice')).to.deep.include({ listeningKey: newer.listeningKey, acked: false });
    } finally {
      store.updateIfMatches = original;
    }
  });

  it('limits bytes per second: RATE_LIMITED once the byte burst is spent, within the message rate', async function () {
    const node = await world.startNode('node-a', {
      MSG_RATE_BYTES_PER_SECOND: '2048',
      MSG_RATE_BYTES_BURST: '8192',
      MSG_MAX_MESSAGE_BYTES: '4096',
    });
    const { socket } = await world.online('alice', node);
    await world.online('bob', node);
    const content = 'x'.repeat(1000);
    for (let i = 0; i < 20; i += 1) socket.send({ type: 'message', to: 'bob', content, id: `m${String(i)}` });
    const limitedIds = (): string[] => socket.framesOfType('error').flatMap((f) => (f.code === 'RATE_LIMITED' ? (f.ids ?? (f.id === undefined ? [] : [f.id])) : []));
    await waitFor(() => socket.framesOfType('ack').length + limitedIds().length >= 20, { what: '20 outcomes' });
    expect(socket.framesOfType('ack').length).to.be.within(6, 9);
    expect(limitedIds()).to.have.length(20 - socket.framesOfType('ack').length);
    expect(new Set([...limitedIds(), ...socket.framesOfType('ack').map((a) => a.id)]).size).to.equal(20);
  });

  it('charges oversized frames too, so a flood of them is rate limited like any other', async function () {
    const node = await world.startNode('node-a', { MSG_RATE_MESSAGES_PER_SECOND: '10', MSG_RATE_BURST: '10' });
    const { socket } = await world.online('alice', node);
    const big = 'y'.repeat(70_000);
    for (let i = 0; i < 30; i += 1) socket.send(JSON.stringify({ type: 'message', to: 'alice', content: big }));
    socket.send({ type: 'ping', id: 'after' });
    const codes = (): string[] => socket.framesOfType('error').map((f) => f.code);
    await waitFor(
      () => socket.frames.some((f) => (f.type === 'pong' && f.id === 'after') || (f.type === 'error' && (f.id === 'after' || f.ids?.includes('after')))),
      { what: 'the ping answered' },
    );
    // The burst of 10, plus what refilled at 10/s while the frames arrived; the rest answered by RATE_LIMITED, one
    // error per burst (these frames have no id, so nothing more than the error itself).
    const tooLarge = codes().filter((c) => c === 'MESSAGE_TOO_LARGE').length;
    expect(tooLarge).to.be.within(10, 14);
    expect(codes().filter((c) => c === 'RATE_LIMITED').length).to.be.within(1, 30 - tooLarge);
  });
});
