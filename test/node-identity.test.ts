// Issue 28: each node its own identity. Real processes (etcd, memcached, a gateway, two nodes with a cluster secret).
import { expect } from 'chai';
import type { Session } from '@messaging-server/protocol';
import { connectUser, LocalCluster, SignedPeer, startCluster, TestSocket, waitFor } from '@messaging-server/testkit';
import { closeTracked, messagesFrom, track, uid } from './protocol-suite.js';

const SECRET = 'node-identity-cluster-secret';

async function nodesSeenBy(internalUrl: string): Promise<number> {
  return ((await (await fetch(`${internalUrl}/readyz`)).json()) as { nodes: number }).nodes;
}

describe('node identity on the internal API (issue 28)', function () {
  this.timeout(60_000);
  let cluster: LocalCluster;
  let alice: { session: Session; socket: TestSocket };
  let bob: { session: Session; socket: TestSocket };
  const internalUrlOf = (nodeId: string): string => {
    const node = cluster.nodes.get(nodeId);
    if (!node) throw new Error(`no node ${nodeId}`);
    return node.internalUrl;
  };

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 2, env: { MSG_CLUSTER_SECRET: SECRET, MSG_LEASE_TTL_SECONDS: '2' } });
  });
  after(async () => {
    await cluster?.stop();
  });
  beforeEach(async () => {
    alice = track(await connectUser(cluster.gatewayUrl, uid('alice')));
    for (let i = 0; i < 10; i++) {
      bob = track(await connectUser(cluster.gatewayUrl, uid('bob')));
      if (bob.session.nodeId !== alice.session.nodeId) break;
      bob.socket.close();
    }
    expect(bob.session.nodeId).to.not.equal(alice.session.nodeId);
  });
  afterEach(closeTracked);

  function forgedFrom(fromNode: string, replyTo: string, content: string): unknown {
    return { fromNode, replyTo, messages: [{ from: alice.session.userId, to: bob.session.userId, content, id: 'forged-1', cid: 'c-forged' }] };
  }

  /** A real message after the forged ones: once it is at bob, anything forged would have been there before it. */
  async function onlyRealArrives(): Promise<void> {
    alice.socket.send({ to: bob.session.userId, content: 'real', id: 'r1' });
    await alice.socket.waitForFrame((f) => f.type === 'ack' && f.id === 'r1');
    await waitFor(() => messagesFrom(bob.socket, alice.session.userId).length >= 1, { what: 'the real message at bob' });
    expect(messagesFrom(bob.socket, alice.session.userId).map((m) => m.content)).to.deep.equal(['real']);
  }

  it('refuses a forged delivery with the old shared secret (401) and delivers nothing from it', async () => {
    const bobNode = internalUrlOf(bob.session.nodeId);
    const forged = forgedFrom(alice.session.nodeId, internalUrlOf(alice.session.nodeId), 'forged with the cluster secret');
    for (const path of ['/internal/v1/deliver', '/internal/v1/outcomes']) {
      const res = await fetch(`${bobNode}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-cluster-secret': SECRET },
        body: JSON.stringify(path.endsWith('deliver') ? forged : { outcomes: [] }),
      });
      expect(res.status, path).to.equal(401);
      expect(await res.json(), path).to.have.nested.property('error.code', 'UNAUTHORIZED');
    }
    await onlyRealArrives();
  });

  it('lets a registered peer speak only as itself, and only for users whose sessions it holds', async () => {
    const bobNode = internalUrlOf(bob.session.nodeId);
    const rogue = await SignedPeer.register(cluster, uid('rogue'));
    try {
      await waitFor(async () => (await nodesSeenBy(bobNode)) === 3, { what: 'the peer in the node’s view' });
      // Its own valid key, claiming another node's messages: refused whole.
      const asOther = await rogue.post(bobNode, '/internal/v1/deliver', forgedFrom(alice.session.nodeId, internalUrlOf(alice.session.nodeId), 'as node'));
      expect(asOther.status).to.equal(403);
      expect(await asOther.json()).to.have.nested.property('error.code', 'FORBIDDEN_SENDER');
      // As itself, but alice's session record names her own node: the message is refused.
      const asItself = await rogue.post(bobNode, '/internal/v1/deliver', forgedFrom(rogue.nodeId, rogue.internalUrl, 'as user'));
      expect(asItself.status).to.equal(200);
      expect(await asItself.json()).to.deep.equal({ results: [{ status: 'error', code: 'FORBIDDEN_SENDER' }] });
      // A node's key is not a gateway's credential.
      const replace = await rogue.post(bobNode, '/internal/v1/replace', { userId: bob.session.userId, listeningKey: bob.session.listeningKey });
      expect(replace.status).to.equal(401);
      await onlyRealArrives();
    } finally {
      await rogue.close();
    }
  });

  it('accepts the gateway credential on replace, the one route a gateway calls', async () => {
    const res = await fetch(`${internalUrlOf(bob.session.nodeId)}/internal/v1/replace`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-cluster-secret': SECRET },
      body: JSON.stringify({ userId: bob.session.userId, listeningKey: bob.session.listeningKey }),
    });
    expect(await res.json()).to.deep.equal({ closed: true });
    expect(await bob.socket.closed()).to.deep.equal({ code: 4503, reason: 'session_replaced' });
  });
});
