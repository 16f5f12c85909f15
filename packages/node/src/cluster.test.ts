import { createServer, type AddressInfo, type Socket } from 'node:net';
import { expect } from 'chai';
import { waitFor } from '@messaging-server/testkit';
import { internalPost, signedPost, TestWorld, type TestNode } from './testing/test-world.js';
import { asNodeId } from '@messaging-server/protocol';

const SECRET = 'cluster-secret-for-tests';

describe('relay nodes (two in one process)', function () {
  let world: TestWorld;
  let a: TestNode;
  let b: TestNode;

  beforeEach(async function () {
    world = new TestWorld();
    a = await world.startNode('node-a', { MSG_CLUSTER_SECRET: SECRET });
    b = await world.startNode('node-b', { MSG_CLUSTER_SECRET: SECRET });
    // Each node follows the registry; wait until both see each other through readiness and membership.
    await waitFor(async () => (await fetch(`${a.internalUrl}/readyz`)).status === 200 && (await fetch(`${b.internalUrl}/readyz`)).status === 200, {
      what: 'both ready',
    });
  });
  afterEach(async function () {
    await world.close();
  });

  it('relays across nodes in order (1000 messages), with one ack each', async function () {
    const alice = await world.online('alice', a);
    const bob = await world.online('bob', b);
    for (let i = 0; i < 1000; i += 1) alice.socket.send({ type: 'message', to: 'bob', content: i, id: `m${String(i)}` });
    await waitFor(() => bob.socket.framesOfType('message').length === 1000, { what: '1000 messages at bob' });
    expect(bob.socket.framesOfType('message').map((m) => m.content)).to.deep.equal([...Array(1000).keys()]);
    expect(bob.socket.framesOfType('message').every((m) => m.from === 'alice')).to.equal(true);
    await waitFor(() => alice.socket.framesOfType('ack').length === 1000, { what: '1000 acks' });
    expect(new Set(alice.socket.framesOfType('ack').map((f) => f.id)).size).to.equal(1000);
    expect(alice.socket.framesOfType('error')).to.have.length(0);
    const metrics = await (await fetch(`${a.internalUrl}/metrics`)).text();
    expect(metrics).to.match(/msg_messages_relayed_total\{path="remote",node_id="node-a"\} 1000/);
  });

  it('keeps order while the first lookup of the recipient is slow', async function () {
    const alice = await world.online('alice', a);
    const bob = await world.online('bob', b);
    const store = world.sessions as unknown as { get: (userId: string) => Promise<unknown> };
    const original = store.get.bind(world.sessions);
    let calls = 0;
    store.get = async (userId: string) => {
      calls += 1;
      if (calls === 1) await new Promise((resolve) => setTimeout(resolve, 300));
      return original(userId);
    };
    try {
      alice.socket.send({ type: 'message', to: 'bob', content: 0, id: 'm0' });
      await waitFor(() => calls === 1, { what: 'first lookup started' });
      for (let i = 1; i < 10; i += 1) alice.socket.send({ type: 'message', to: 'bob', content: i, id: `m${String(i)}` });
      await waitFor(() => bob.socket.framesOfType('message').length === 10, { what: '10 messages' });
      expect(bob.socket.framesOfType('message').map((m) => m.content)).to.deep.equal([...Array(10).keys()]);
    } finally {
      store.get = original;
    }
  });

  it('splits large messages into several node-to-node requests, still in order', async function () {
    const alice = await world.online('alice', a);
    const bob = await world.online('bob', b);
    const blob = 'x'.repeat(60_000);
    for (let i = 0; i < 40; i += 1) alice.socket.send({ type: 'message', to: 'bob', content: { i, blob }, id: `m${String(i)}` });
    await waitFor(() => alice.socket.framesOfType('ack').length + alice.socket.framesOfType('error').length === 40, { what: '40 answers' });
    expect(alice.socket.framesOfType('error')).to.have.length(0);
    expect(bob.socket.framesOfType('message').map((m) => (m.content as { i: number }).i)).to.deep.equal([...Array(40).keys()]);
  });

  it('acks through the recipient node once a pending message is delivered there', async function () {
    const alice = await world.online('alice', a);
    const bobSession = await world.session('bob', b);
    for (let i = 0; i < 3; i += 1) alice.socket.send({ type: 'message', to: 'bob', content: i, id: `m${String(i)}` });
    await waitFor(() => b.node.stats.pending === 3, { what: 'three pending on node-b' });
    expect(alice.socket.framesOfType('ack')).to.have.length(0);
    const bob = world.socket(bobSession);
    await waitFor(() => bob.framesOfType('message').length === 3, { what: 'three delivered' });
    expect(bob.framesOfType('message').map((m) => m.content)).to.deep.equal([0, 1, 2]);
    await waitFor(() => alice.socket.framesOfType('ack').length === 3, { what: 'three acks on node-a' });
    expect(alice.socket.framesOfType('ack').map((f) => f.id)).to.deep.equal(['m0', 'm1', 'm2']);
  });

  it('reports EXPIRED from the recipient node to the sender', async function () {
    await world.close();
    world = new TestWorld();
    a = await world.startNode('node-a');
    b = await world.startNode('node-b', { MSG_PENDING_TTL_MS: '150' });
    await waitFor(async () => (await fetch(`${a.internalUrl}/readyz`)).status === 200, { what: 'a ready' });
    const alice = await world.online('alice', a);
    await world.session('bob', b);
    await waitFor(async () => (await world.registry.list()).nodes.size === 2, { what: 'two nodes' });
    alice.socket.send({ type: 'message', to: 'bob', content: 'late', id: 'm1' });
    const error = await alice.socket.waitForFrame((f) => f.type === 'error');
    expect(error).to.include({ code: 'EXPIRED', id: 'm1' });
  });

  it('waits briefly for a node that registered but is not in its view yet', async function () {
    const alice = await world.online('alice', a);
    const bobSession = await world.session('bob', 'node-c');
    alice.socket.send({ type: 'message', to: 'bob', content: 'early', id: 'm1' });
    const c = await world.startNode('node-c', { MSG_CLUSTER_SECRET: SECRET });
    const bob = world.socket(bobSession, { address: c.publicUrl });
    await waitFor(() => bob.framesOfType('message').length === 1, { what: 'message at bob' });
    expect(bob.framesOfType('message')[0]).to.include({ from: 'alice', content: 'early', id: 'm1' });
    expect(await alice.socket.waitForFrame((f) => f.type === 'ack' || f.type === 'error')).to.deep.equal({ type: 'ack', id: 'm1' });
  });

  it('rejects internal requests without the cluster secret; health stays open', async function () {
    const alice = await world.online('alice', a);
    const denied = await internalPost(a, '/internal/v1/replace', { userId: 'alice', listeningKey: alice.session.listeningKey });
    expect(denied.status).to.equal(401);
    expect(await denied.json()).to.have.nested.property('error.code', 'UNAUTHORIZED');
    const wrong = await internalPost(a, '/internal/v1/deliver', { fromNode: 'x', replyTo: 'http://x', messages: [] }, { 'x-cluster-secret': 'nope' });
    expect(wrong.status).to.equal(401);
    expect((await fetch(`${a.internalUrl}/healthz`)).status).to.equal(200);
    expect((await fetch(`${a.internalUrl}/metrics`)).status).to.equal(200);
    const ok = await internalPost(a, '/internal/v1/replace', { userId: 'alice', listeningKey: alice.session.listeningKey }, { 'x-cluster-secret': SECRET });
    expect(await ok.json()).to.deep.equal({ closed: true });
    expect(await alice.socket.closed()).to.deep.equal({ code: 4503, reason: 'session_replaced' });
  });

  it('refuses deliveries with the cluster secret, signed for another node, or for a user on another node (issue 28)', async function () {
    await world.online('alice', a);
    const bob = await world.online('bob', b);
    const forged = { fromNode: 'node-a', replyTo: a.internalUrl, messages: [{ from: 'alice', to: 'bob', content: 'forged', id: 'f1', cid: 'c1' }] };
    // The old shape: the shared secret alone no longer opens a node route, and the body is never read.
    const shared = await internalPost(b, '/internal/v1/deliver', forged, { 'x-cluster-secret': SECRET });
    expect(shared.status).to.equal(401);
    expect(await shared.json()).to.have.nested.property('error.code', 'UNAUTHORIZED');
    // A node signs only as itself: node-b's key cannot claim node-a's messages.
    const c = await world.startNode('node-c', { MSG_CLUSTER_SECRET: SECRET });
    await waitFor(async () => ((await (await fetch(`${b.internalUrl}/readyz`)).json()) as { nodes: number }).nodes === 3, { what: 'c in b’s view' });
    const asOther = await signedPost(b, c, '/internal/v1/deliver', forged);
    expect(asOther.status).to.equal(403);
    expect(await asOther.json()).to.have.nested.property('error.code', 'FORBIDDEN_SENDER');
    // Signed by node-c for itself, but alice's session is on node-a: refused per message.
    const wrongUser = await signedPost(b, c, '/internal/v1/deliver', { ...forged, fromNode: 'node-c', replyTo: c.internalUrl });
    expect(await wrongUser.json()).to.deep.equal({ results: [{ status: 'error', code: 'FORBIDDEN_SENDER' }] });
    // A signature is good for one body once: replayed, or with another body, it is refused.
    const text = JSON.stringify(forged);
    const headers = { 'content-type': 'application/json', ...a.identity.headers('POST', '/internal/v1/deliver', text, b.internalUrl) };
    const post = (body: string) => fetch(`${b.internalUrl}/internal/v1/deliver`, { method: 'POST', headers, body });
    expect((await post(text.replace('forged', 'tampered'))).status).to.equal(401);
    expect((await post(text)).status).to.equal(200);
    expect((await post(text)).status).to.equal(401);
    await bob.socket.waitForFrame((f) => f.type === 'message');
    expect(bob.socket.framesOfType('message').map((m) => m.content)).to.deep.equal(['forged']);
  });

  it('keeps relaying from the last known membership while the registry is down, and is ready again after', async function () {
    const alice = await world.online('alice', a);
    const bob = await world.online('bob', b);
    world.registryControl.setAvailable(false);
    try {
      await waitFor(async () => (await fetch(`${a.internalUrl}/readyz`)).status === 503, { what: 'a not ready' });
      expect((await fetch(`${a.internalUrl}/healthz`)).status).to.equal(200);
      alice.socket.send({ type: 'message', to: 'bob', content: 'during outage', id: 'm1' });
      await alice.socket.waitForFrame((f) => f.type === 'ack');
      // The ack and the delivery travel on different sockets: wait for bob's copy rather than expect it already.
      await waitFor(() => bob.socket.framesOfType('message').length >= 1, { what: 'the message at bob' });
      expect(bob.socket.framesOfType('message').map((m) => m.content)).to.deep.equal(['during outage']);
    } finally {
      world.registryControl.setAvailable(true);
    }
    await waitFor(async () => (await fetch(`${a.internalUrl}/readyz`)).status === 200, { what: 'a ready again' });
  });

  it('refuses a delivery request read after its sender gave up, and delivers nothing from it', async function () {
    const bob = await world.online('bob', b);
    await world.session('alice', a);
    const late = {
      fromNode: 'node-a',
      replyTo: a.internalUrl,
      // Spent before the recipient has even read the body.
      budgetMs: 0,
      messages: [{ from: 'alice', to: 'bob', content: 'too late', id: 'l1', cid: 'c1' }],
    };
    const res = await signedPost(b, a, '/internal/v1/deliver', late);
    expect(await res.json()).to.deep.equal({ results: [{ status: 'error', code: 'RELAY_FAILED' }] });
    const onTime = { ...late, budgetMs: 5000, messages: [{ ...late.messages[0], content: 'on time', id: 'l2' }] };
    const ok = await signedPost(b, a, '/internal/v1/deliver', onTime);
    expect(await ok.json()).to.deep.equal({ results: [{ status: 'delivered' }] });
    await bob.socket.waitForFrame((f) => f.type === 'message' && f.content === 'on time');
    expect(bob.socket.framesOfType('message').map((m) => m.content)).to.deep.equal(['on time']);
  });

  it('tries the last known node while a session is missing (memcached restarted empty)', async function () {
    const alice = await world.online('alice', a);
    const bob = await world.online('bob', b);
    alice.socket.send({ type: 'message', to: 'bob', content: 'before', id: 'm1' });
    await alice.socket.waitForFrame((f) => f.type === 'ack' && f.id === 'm1');
    const bobSession = await world.sessions.get('bob');
    if (!bobSession) throw new Error('bob has no session');
    await world.sessions.deleteIfMatches('bob', bobSession.listeningKey);
    alice.socket.send({ type: 'message', to: 'bob', content: 'after the restart', id: 'm2' });
    await alice.socket.waitForFrame((f) => f.type === 'ack' && f.id === 'm2');
    await waitFor(() => bob.socket.framesOfType('message').length >= 2, { what: 'both messages at bob' });
    expect(bob.socket.framesOfType('message').map((m) => m.content)).to.deep.equal(['before', 'after the restart']);
    // Once bob is gone from his node too, the stale location answers PEER_UNAVAILABLE and is dropped.
    bob.socket.close();
    await waitFor(async () => !(await world.sessions.get('bob')) && b.node.stats.connections === 0, { what: 'bob offline, and gone from node-b' });
    alice.socket.send({ type: 'message', to: 'bob', content: 'nobody home', id: 'm3' });
    expect(await alice.socket.waitForFrame((f) => f.type === 'error' && f.id === 'm3')).to.include({ code: 'PEER_UNAVAILABLE' });
  });

  it('asks the store about a remote recipient about once a second, not once per message', async function () {
    const alice = await world.online('alice', a);
    const bob = await world.online('bob', b);
    const store = world.sessions as unknown as { get: (userId: string) => Promise<unknown> };
    const original = store.get.bind(world.sessions);
    let lookups = 0;
    store.get = (userId: string) => {
      if (userId === 'bob') lookups += 1;
      return original(userId);
    };
    try {
      const startedAt = Date.now();
      // One at a time: each message is its own outbox drain, which used to be one lookup each.
      for (let i = 0; i < 30; i += 1) {
        alice.socket.send({ type: 'message', to: 'bob', content: i, id: `s${String(i)}` });
        await alice.socket.waitForFrame((f) => f.type === 'ack' && f.id === `s${String(i)}`);
      }
      const seconds = (Date.now() - startedAt) / 1000;
      expect(lookups).to.be.at.most(Math.ceil(seconds) + 2);
      expect(bob.socket.framesOfType('message').map((m) => m.content)).to.deep.equal([...Array(30).keys()]);
    } finally {
      store.get = original;
    }
  });

  it('routes a message again after a fresh lookup when its recipient moved to another node meanwhile', async function () {
    const c = await world.startNode('node-c', { MSG_CLUSTER_SECRET: SECRET });
    await waitFor(async () => (await fetch(`${a.internalUrl}/readyz`)).json().then((r: { nodes?: number }) => r.nodes === 3), {
      what: 'node-a sees node-c',
    });
    const alice = await world.online('alice', a);
    const bob = await world.online('bob', b);
    alice.socket.send({ type: 'message', to: 'bob', content: 'on b', id: 'm1' });
    await alice.socket.waitForFrame((f) => f.type === 'ack' && f.id === 'm1');
    // bob reconnects through node-c; node-a still has node-b cached as his location.
    bob.socket.close();
    await waitFor(() => b.node.stats.connections === 0, { what: 'bob gone from node-b' });
    const moved = await world.online('bob', c);
    alice.socket.send({ type: 'message', to: 'bob', content: 'on c', id: 'm2' });
    expect(await alice.socket.waitForFrame((f) => (f.type === 'ack' || f.type === 'error') && f.id === 'm2')).to.deep.equal({ type: 'ack', id: 'm2' });
    await waitFor(() => moved.socket.framesOfType('message').length >= 1, { what: 'the message at bob on node-c' });
    expect(moved.socket.framesOfType('message').map((m) => m.content)).to.deep.equal(['on c']);
  });

  it('lets a draining client hear the outcome of its own messages before it is closed', async function () {
    const alice = await world.online('alice', a);
    await world.online('bob', b);
    const store = world.sessions as unknown as { get: (userId: string) => Promise<unknown> };
    const original = store.get.bind(world.sessions);
    let lookingUpBob = false;
    store.get = async (userId: string) => {
      if (userId === 'bob') lookingUpBob = true;
      await new Promise((resolve) => setTimeout(resolve, 400));
      return original(userId);
    };
    try {
      alice.socket.send({ type: 'message', to: 'bob', content: 'last words', id: 'w1' });
      // The drain starts while the node is busy with the message: its lookup of bob has begun (and takes 400 ms).
      await waitFor(() => lookingUpBob, { what: 'the lookup of bob' });
      const drained = a.node.drain();
      const close = await alice.socket.closed();
      expect(close.code).to.equal(4000);
      const ackIndex = alice.socket.frames.findIndex((f) => f.type === 'ack' && f.id === 'w1');
      expect(ackIndex, 'ack before the close').to.be.greaterThan(-1);
      await drained;
    } finally {
      store.get = original;
    }
  });

  // v1's answers for recipients that vanish: the resume window is 0, so nothing is held for them.
  describe('v1 (MSG_RESUME_WINDOW_MS=0)', function () {
    beforeEach(async function () {
      await world.close();
      world = new TestWorld();
      a = await world.startNode('node-a', { MSG_CLUSTER_SECRET: SECRET, MSG_RESUME_WINDOW_MS: '0' });
      b = await world.startNode('node-b', { MSG_CLUSTER_SECRET: SECRET, MSG_RESUME_WINDOW_MS: '0' });
      await waitFor(async () => (await fetch(`${a.internalUrl}/readyz`)).status === 200 && (await fetch(`${b.internalUrl}/readyz`)).status === 200, {
        what: 'both ready',
      });
    });

    it('answers RELAY_FAILED within 2 s when the recipient node does not answer', async function () {
      // A "node" that accepts connections and never answers, as a hung or crashed peer whose lease has not expired yet.
      const sockets = new Set<Socket>();
      const hung = createServer((socket) => sockets.add(socket));
      await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
      const port = (hung.address() as AddressInfo).port;
      const registration = await world.registry.registerNode({
        nodeId: asNodeId('node-hung'),
        listeningAddress: 'http://127.0.0.1:1/ws',
        internalAddress: `http://127.0.0.1:${String(port)}`,
        state: 'active',
        startedAt: new Date().toISOString(),
        version: 'test',
      });
      try {
        const alice = await world.online('alice', a);
        await world.session('bob', 'node-hung');
        await new Promise((resolve) => setImmediate(resolve));
        const sentAt = Date.now();
        alice.socket.send({ type: 'message', to: 'bob', content: 'x', id: 'm1' });
        alice.socket.send({ type: 'message', to: 'bob', content: 'y', id: 'm2' });
        await waitFor(() => alice.socket.framesOfType('error').length === 2, { what: 'two errors', timeoutMs: 3000 });
        expect(Date.now() - sentAt).to.be.lessThan(2000);
        expect(alice.socket.framesOfType('error').map((e) => [e.code, e.id])).to.deep.equal([
          ['RELAY_FAILED', 'm1'],
          ['RELAY_FAILED', 'm2'],
        ]);
      } finally {
        await registration.revoke();
        for (const socket of sockets) socket.destroy();
        hung.close();
      }
    });

    it('answers PEER_UNAVAILABLE when the recipient session points at a node that left the registry', async function () {
      const alice = await world.online('alice', a);
      await world.session('bob', 'node-gone');
      alice.socket.send({ type: 'message', to: 'bob', content: 'x', id: 'm1' });
      expect(await alice.socket.waitForFrame((f) => f.type === 'error')).to.include({ code: 'PEER_UNAVAILABLE', id: 'm1' });
    });

    it('keeps relaying from known locations while the session store is down', async function () {
      const alice = await world.online('alice', a);
      const bob = await world.online('bob', b);
      alice.socket.send({ type: 'message', to: 'bob', content: 'before', id: 'm1' });
      await alice.socket.waitForFrame((f) => f.type === 'ack');
      const store = world.sessions as unknown as { get: (userId: string) => Promise<unknown> };
      const original = store.get.bind(world.sessions);
      store.get = () => Promise.reject(new Error('memcached down'));
      try {
        alice.socket.send({ type: 'message', to: 'bob', content: 'during', id: 'm2' });
        await waitFor(() => bob.socket.framesOfType('message').length === 2, { what: 'second message' });
        alice.socket.send({ type: 'message', to: 'carol', content: 'unknown', id: 'm3' });
        expect(await alice.socket.waitForFrame((f) => f.type === 'error')).to.include({ code: 'RELAY_FAILED', id: 'm3' });
      } finally {
        store.get = original;
      }
    });
  });

});
