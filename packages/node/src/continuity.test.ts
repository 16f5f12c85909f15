import { createServer, type AddressInfo, type Socket } from 'node:net';
import { expect } from 'chai';
import WebSocket from 'ws';
import type { ServerFrame } from '@messaging-server/protocol';
import { waitFor } from '@messaging-server/testkit';
import { TestWorld, type TestNode } from './testing/test-world.js';
import { asNodeId } from '@messaging-server/protocol';

const SECRET = 'cluster-secret-for-tests';
const WINDOW_MS = 1500;

/** Contract v1.1: users whose connection ends without their own clean close are moving, and lose nothing. */
describe('continuity: users moving between nodes (v1.1)', function () {
  let world: TestWorld;
  let a: TestNode;
  let b: TestNode;

  beforeEach(async function () {
    world = new TestWorld();
    const env = { MSG_CLUSTER_SECRET: SECRET, MSG_RESUME_WINDOW_MS: String(WINDOW_MS) };
    a = await world.startNode('node-a', env);
    b = await world.startNode('node-b', env);
    await waitFor(async () => (await fetch(`${a.internalUrl}/readyz`)).status === 200 && (await fetch(`${b.internalUrl}/readyz`)).status === 200, {
      what: 'both ready',
    });
  });
  afterEach(async function () {
    await world.close();
  });

  it('marks the session moving when the node closes a connection with a recoverable code, and deletes it on a clean client close', async function () {
    const alice = await world.online('alice', a);
    const bob = await world.online('bob', a);
    bob.socket.close();
    await waitFor(async () => (await world.sessions.get('bob')) === undefined, { what: "bob's session deleted" });
    await a.node.drain();
    expect(await alice.socket.closed()).to.deep.equal({ code: 4000, reason: 'node_shutdown' });
    expect(await world.sessions.get('alice')).to.include({ moving: true, acked: true, nodeId: 'node-a' });
  });

  it('answers PEER_UNAVAILABLE at once for a user who closed cleanly', async function () {
    const alice = await world.online('alice', a);
    const bob = await world.online('bob', b);
    bob.socket.close();
    await waitFor(async () => (await world.sessions.get('bob')) === undefined, { what: "bob's session deleted" });
    const sentAt = Date.now();
    alice.socket.send({ type: 'message', to: 'bob', content: 'hello?', id: 'm1' });
    expect(await alice.socket.waitForFrame((f) => f.type === 'error')).to.include({ code: 'PEER_UNAVAILABLE', id: 'm1' });
    expect(Date.now() - sentAt).to.be.lessThan(1000);
  });

  it('holds messages for a user whose node drains, and delivers them in order after its welcome elsewhere', async function () {
    const alice = await world.online('alice', a);
    const bob = await world.online('bob', b);
    const draining = b.node.drain();
    expect(await bob.socket.closed()).to.deep.equal({ code: 4000, reason: 'node_shutdown' });
    for (let i = 0; i < 5; i += 1) alice.socket.send({ type: 'message', to: 'bob', content: i, id: `m${String(i)}` });
    const metricsOfA = async (): Promise<string> => (await fetch(`${a.internalUrl}/metrics`)).text();
    await waitFor(async () => /msg_held_messages\{node_id="node-a"\} 5/.test(await metricsOfA()), { what: 'five messages held on node-a' });
    // bob comes back through /connect, now on node-a.
    const back = world.socket(await world.session('bob', a));
    await back.welcomed();
    await waitFor(() => back.framesOfType('message').length === 5, { what: 'five messages after the move' });
    expect(back.framesOfType('message').map((m) => m.content)).to.deep.equal([0, 1, 2, 3, 4]);
    await waitFor(() => alice.socket.framesOfType('ack').length === 5, { what: 'five acks' });
    expect(alice.socket.framesOfType('error')).to.deep.equal([]);
    await draining;
    expect(await metricsOfA()).to.match(/msg_resumed_messages_total\{node_id="node-a"\} 5/);
  });

  it('holds messages for a user on a node that stops answering, and delivers them once it is back on another node', async function () {
    const sockets = new Set<Socket>();
    const hung = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const registration = await world.registry.registerNode({
      nodeId: asNodeId('node-hung'),
      listeningAddress: 'http://127.0.0.1:1/ws',
      internalAddress: `http://127.0.0.1:${String((hung.address() as AddressInfo).port)}`,
      state: 'active',
      startedAt: new Date().toISOString(),
      version: 'test',
    });
    try {
      const alice = await world.online('alice', a);
      const stale = await world.session('bob', 'node-hung');
      await world.sessions.put({ ...stale, acked: true }, 30);
      await new Promise((resolve) => setImmediate(resolve));
      alice.socket.send({ type: 'message', to: 'bob', content: 'x', id: 'm1' });
      alice.socket.send({ type: 'message', to: 'bob', content: 'y', id: 'm2' });
      // The forward times out (1.5 s); the messages' fate is unknown, so they wait for bob instead of failing.
      await waitFor(async () => /msg_redelivered_messages_total\{node_id="node-a"\} 2/.test(await (await fetch(`${a.internalUrl}/metrics`)).text()), {
        what: 'the failed forward counted',
        timeoutMs: 3000,
      });
      const back = world.socket(await world.session('bob', b));
      await back.welcomed();
      await waitFor(() => back.framesOfType('message').length === 2, { what: 'both messages after the move' });
      expect(back.framesOfType('message').map((m) => m.content)).to.deep.equal(['x', 'y']);
      await waitFor(() => alice.socket.framesOfType('ack').length === 2, { what: 'two acks' });
      expect(alice.socket.framesOfType('error')).to.deep.equal([]);
    } finally {
      await registration.revoke();
      for (const socket of sockets) socket.destroy();
      hung.close();
    }
  });

  it('answers EXPIRED when the window ends for a user who never comes back, and no sooner', async function () {
    const alice = await world.online('alice', a);
    await world.session('bob', 'node-gone');
    const sentAt = Date.now();
    alice.socket.send({ type: 'message', to: 'bob', content: 'x', id: 'm1' });
    const error = await alice.socket.waitForFrame((f) => f.type === 'error', WINDOW_MS + 3000);
    const after = Date.now() - sentAt;
    expect(error).to.include({ code: 'EXPIRED', id: 'm1' });
    // The node waits up to 1 s for a node it does not know before it counts the user as moving.
    expect(after).to.be.within(WINDOW_MS, WINDOW_MS + 1000 + 500);
  });

  it('holds what is sent to a user whose connection dropped (no close frame), and delivers it after its return', async function () {
    const alice = await world.online('alice', a);
    // bob on the raw websocket transport, so the test can drop the TCP connection without a close frame.
    const session = await world.session('bob', b);
    const ws = new WebSocket(`${b.publicUrl.replace(/^http/, 'ws')}/websocket?userId=bob&listeningKey=${session.listeningKey}`);
    const frames: ServerFrame[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(String(data)) as ServerFrame));
    await waitFor(() => frames.find((f) => f.type === 'welcome'), { what: 'bob welcomed' });
    alice.socket.send({ type: 'message', to: 'bob', content: 'before', id: 'm0' });
    await waitFor(() => frames.find((f) => f.type === 'message'), { what: 'first message' });
    ws.terminate();
    await waitFor(async () => (await world.sessions.get('bob'))?.moving === true, { what: 'bob moving' });
    alice.socket.send({ type: 'message', to: 'bob', content: 'after', id: 'm1' });
    const back = world.socket(await world.session('bob', b));
    await back.welcomed();
    await waitFor(() => back.framesOfType('message').length === 1, { what: 'held message after the return' });
    expect(back.framesOfType('message')[0]).to.include({ from: 'alice', content: 'after', id: 'm1' });
    expect(await alice.socket.waitForFrame((f) => f.type === 'ack' && f.id === 'm1')).to.deep.equal({ type: 'ack', id: 'm1' });
  });
});
