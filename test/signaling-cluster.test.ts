import { expect } from 'chai';
import type { ErrorFrame, Session } from '@messaging-server/protocol';
import { connectUser, LocalCluster, requestSession, startCluster, TestSocket, waitFor } from '@messaging-server/testkit';
import { ackIds, closeTracked, describeProtocol, messagesFrom, track, uid } from './protocol-suite.js';

/** Connects users until one lands on a node other than `avoidNode` (allocation is least-loaded, so this is quick). */
async function connectOnOtherNode(gatewayUrl: string, label: string, avoidNode: string): Promise<{ session: Session; socket: TestSocket }> {
  for (let i = 0; i < 10; i++) {
    const user = await connectUser(gatewayUrl, uid(label));
    if (user.session.nodeId !== avoidNode) return user;
    user.socket.close();
  }
  throw new Error(`could not get a session off ${avoidNode}`);
}

describe('signaling across a cluster of real processes (etcd, memcached, 1 gateway, 2 nodes)', function () {
  this.timeout(60_000);
  let cluster: LocalCluster;

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 2, env: { MSG_CLUSTER_SECRET: 'test-cluster-secret', MSG_LEASE_TTL_SECONDS: '2' } });
  });
  after(async () => {
    await cluster?.stop();
  });
  afterEach(closeTracked);

  describeProtocol('cluster', () => ({
    gatewayUrl: cluster.gatewayUrl,
    listeningAddresses: [...cluster.nodes.values()].map((n) => n.listeningAddress),
  }));

  it('puts alice and bob on different nodes and relays both ways with acks', async () => {
    const alice = track(await connectUser(cluster.gatewayUrl, uid('alice')));
    const bob = track(await connectOnOtherNode(cluster.gatewayUrl, 'bob', alice.session.nodeId));
    expect(bob.session.nodeId).to.not.equal(alice.session.nodeId);
    alice.socket.send({ to: bob.session.userId, content: { type: 'offer', sdp: 'v=0 a' }, id: 'a1' });
    bob.socket.send({ to: alice.session.userId, content: { type: 'answer', sdp: 'v=0 b' }, id: 'b1' });
    await alice.socket.waitForFrame((f) => f.type === 'ack' && f.id === 'a1');
    await bob.socket.waitForFrame((f) => f.type === 'ack' && f.id === 'b1');
    // Each ack comes on the sender's socket; the message on the other one may still be on its way.
    await waitFor(() => messagesFrom(bob.socket, alice.session.userId).length >= 1 && messagesFrom(alice.socket, bob.session.userId).length >= 1, {
      what: 'both messages delivered',
    });
    expect(messagesFrom(bob.socket, alice.session.userId).map((m) => m.content)).to.deep.equal([{ type: 'offer', sdp: 'v=0 a' }]);
    expect(messagesFrom(alice.socket, bob.session.userId).map((m) => m.content)).to.deep.equal([{ type: 'answer', sdp: 'v=0 b' }]);
  });

  it('delivers 1,000 messages across nodes complete, in order, and all acked', async () => {
    const alice = track(await connectUser(cluster.gatewayUrl, uid('alice')));
    const bob = track(await connectOnOtherNode(cluster.gatewayUrl, 'bob', alice.session.nodeId));
    for (let i = 0; i < 1000; i++) alice.socket.send({ to: bob.session.userId, content: i, id: `m${String(i)}` });
    await waitFor(() => messagesFrom(bob.socket, alice.session.userId).length === 1000, { timeoutMs: 30_000, what: '1,000 messages' });
    expect(messagesFrom(bob.socket, alice.session.userId).map((m) => m.content)).to.deep.equal([...Array(1000).keys()]);
    await waitFor(() => ackIds(alice.socket).size === 1000, { timeoutMs: 30_000, what: '1,000 acks' });
    expect(alice.socket.framesOfType('error')).to.have.length(0);
  });

  it('keeps each of 20 concurrent senders in order to one recipient', async () => {
    const bob = track(await connectUser(cluster.gatewayUrl, uid('bob')));
    const senders = await Promise.all(Array.from({ length: 20 }, () => connectUser(cluster.gatewayUrl, uid('sender')).then(track)));
    expect(new Set(senders.map((s) => s.session.nodeId)).size).to.equal(2);
    const perSender = 50;
    for (let i = 0; i < perSender; i++) for (const s of senders) s.socket.send({ to: bob.session.userId, content: i, id: `s${String(i)}` });
    await waitFor(() => bob.socket.framesOfType('message').length === 20 * perSender, { timeoutMs: 30_000, what: 'all messages' });
    for (const s of senders) {
      expect(messagesFrom(bob.socket, s.session.userId).map((m) => m.content)).to.deep.equal([...Array(perSender).keys()]);
    }
    await waitFor(() => senders.every((s) => ackIds(s.socket).size === perSender), { timeoutMs: 30_000, what: 'all acks' });
  });

  it('closes the right key on the wrong node with 4501', async () => {
    const session = await requestSession(cluster.gatewayUrl, uid('erin'));
    const other = [...cluster.nodes.values()].find((n) => n.nodeId !== session.nodeId);
    if (!other) throw new Error('need two nodes');
    const socket = TestSocket.forSession(session, { address: other.listeningAddress });
    expect((await socket.closed()).code).to.equal(4501);
  });

  it('serves only SockJS on the public port and guards the internal API with the cluster secret', async () => {
    const node = [...cluster.nodes.values()][0];
    if (!node) throw new Error('no node');
    const publicBase = `http://127.0.0.1:${String(node.port)}`;
    for (const path of ['/internal/v1/deliver', '/internal/v1/replace', '/internal/v1/drain', '/connect', '/metrics']) {
      const res = await fetch(`${publicBase}${path}`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
      expect(res.status, `public ${path}`).to.equal(404);
    }
    const noSecret = await fetch(`${node.internalUrl}/internal/v1/replace`, {
      method: 'POST',
      body: JSON.stringify({ userId: 'x', listeningKey: 'y' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(noSecret.status).to.equal(401);
    const wrongSecret = await fetch(`${node.internalUrl}/internal/v1/drain`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json', 'x-cluster-secret': 'nope' },
    });
    expect(wrongSecret.status).to.equal(401);
    expect(cluster.nodes.has(node.nodeId) && node.process.running).to.equal(true);
    const health = await fetch(`${node.internalUrl}/healthz`);
    expect(health.status).to.equal(200);
  });

  it('expires held messages with EXPIRED for each id when the recipient never connects', async () => {
    const shortLived = await cluster.addNode({ env: { MSG_PENDING_TTL_MS: '300' } });
    try {
      await cluster.waitForGatewaysToSee(3);
      // Find a session on the short-TTL node: allocation is least-loaded and the new node is empty.
      let target: Session | undefined;
      for (let i = 0; i < 10 && !target; i++) {
        const s = await requestSession(cluster.gatewayUrl, uid('ghost'));
        if (s.nodeId === shortLived.nodeId) target = s;
      }
      if (!target) throw new Error('no session landed on the new node');
      const alice = track(await connectUser(cluster.gatewayUrl, uid('alice')));
      for (let i = 0; i < 5; i++) alice.socket.send({ to: target.userId, content: i, id: `e${String(i)}` });
      await waitFor(() => alice.socket.framesOfType('error').length === 5, { timeoutMs: 5000, what: '5 EXPIRED errors' });
      const errors = alice.socket.framesOfType('error');
      expect(errors.map((e: ErrorFrame) => [e.id, e.code])).to.deep.equal([0, 1, 2, 3, 4].map((i) => [`e${String(i)}`, 'EXPIRED']));
      expect(alice.socket.framesOfType('ack')).to.have.length(0);
    } finally {
      await cluster.drainNode(shortLived.nodeId);
      await cluster.waitForGatewaysToSee(2);
    }
  });

  it('splits 200 /connects over 2 nodes within 100 ± 20, and a node started mid-test gets sessions within 1 s', async () => {
    const counts = new Map<string, number>();
    const sessions = await Promise.all(Array.from({ length: 200 }, () => requestSession(cluster.gatewayUrl, uid('load'))));
    for (const s of sessions) counts.set(s.nodeId, (counts.get(s.nodeId) ?? 0) + 1);
    expect(counts.size).to.equal(2);
    for (const [nodeId, n] of counts) expect(n, nodeId).to.be.within(80, 120);

    const third = await cluster.addNode();
    try {
      const registeredAt = Date.now();
      const landed = await waitFor(
        async () => {
          const s = await requestSession(cluster.gatewayUrl, uid('late'));
          return s.nodeId === third.nodeId ? Date.now() : undefined;
        },
        { timeoutMs: 5000, intervalMs: 20, what: 'a session on the new node' },
      );
      expect(landed - registeredAt).to.be.below(1000);
    } finally {
      await cluster.drainNode(third.nodeId);
      await cluster.waitForGatewaysToSee(2);
    }
  });
});
