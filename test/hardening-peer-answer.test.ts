// Issue 28, peer answers capped: whatever answers at a registered node's internal address, a sending node reads at
// most a few MiB of its answer. A fake peer, registered in etcd with a session record in memcached pointing a user
// at it, answers each delivery request with 400 MiB: the real sending node's RSS stays bounded, the sender gets an
// error for each message, and the node keeps serving. Before: RSS went from 106 to 907 MiB.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { EtcdRegistry, MemcachedSessionStore, silentLogger, type NodeRegistration } from '@messaging-server/core';
import { requestSession, startCluster, waitFor, type ClusterNode, type LocalCluster } from '@messaging-server/testkit';
import { residentKiB } from './support/proc.js';
import { RawUser } from './support/raw-user.js';
import { asNodeId } from '@messaging-server/protocol';

const MiB = 1 << 20;
const ANSWER = 400 * MiB;

/** Answers every request with `total` bytes of JSON whitespace, as fast as the client takes them. */
class FloodingPeer {
  readonly sent: number[] = [];
  private readonly server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => this.flood(res));
  });
  address = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.address = `http://127.0.0.1:${String((this.server.address() as AddressInfo).port)}`;
    return this;
  }

  private flood(res: ServerResponse): void {
    const chunk = Buffer.alloc(MiB, 0x20);
    let sent = 0;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(ANSWER) });
    const pump = (): void => {
      while (sent < ANSWER && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) return;
      }
      if (sent >= ANSWER) res.end();
    };
    res.on('drain', pump);
    res.on('close', () => this.sent.push(sent));
    pump();
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('hardening: a peer answering 400 MiB costs its sender a few MiB, not its memory (issue 28)', function () {
  this.timeout(120_000);
  let cluster: LocalCluster;
  let node: ClusterNode;
  let peer: FloodingPeer;
  let registry: EtcdRegistry;
  let registration: NodeRegistration | undefined;
  let store: MemcachedSessionStore;
  let sender: RawUser | undefined;
  const fakeId = `fake-${String(process.pid)}`;

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 1, env: { MSG_CLUSTER_SECRET: 'peer-answer-secret-0123456789abcdef' } });
    node = [...cluster.nodes.values()][0] as ClusterNode;
    peer = await new FloodingPeer().start();
    const env = cluster.baseEnv();
    registry = new EtcdRegistry({ endpoints: [cluster.etcdEndpoint], prefix: cluster.prefix, leaseTtlSeconds: 10 });
    store = new MemcachedSessionStore({ servers: [String(env['MSG_MEMCACHED_SERVERS'])], prefix: String(env['MSG_MEMCACHED_PREFIX']), logger: silentLogger });
  });
  after(async () => {
    sender?.ws.close();
    await registration?.revoke().catch(() => undefined);
    await registry?.close();
    await store?.close();
    await peer?.stop();
    await cluster?.stop();
  });

  it('drops each 400 MiB answer after a few MiB: the sender gets an error per message, RSS grows by less than 96 MiB', async () => {
    registration = await registry.registerNode({
      nodeId: asNodeId(fakeId),
      listeningAddress: `${peer.address}/ws`,
      internalAddress: peer.address,
      state: 'active',
      startedAt: new Date().toISOString(),
      version: 'fake',
    });
    const victim = `victim-${String(process.pid)}`;
    await store.put(
      { userId: victim, listeningAddress: `${peer.address}/ws`, listeningKey: 'k'.repeat(32), acked: true, nodeId: fakeId, createdAt: new Date().toISOString() },
      120,
    );
    await waitFor(async () => ((await (await fetch(`${node.internalUrl}/readyz`)).json()) as { nodes: number }).nodes === 2, {
      what: 'the node seeing the fake peer',
    });
    sender = await new RawUser(await requestSession(cluster.gatewayUrl, `sender-${String(process.pid)}`, { avoid: [fakeId] })).welcomed();
    const pid = node.process.pid as number;
    const baseline = await residentKiB(pid);
    let peak = baseline;
    const sampler = setInterval(() => {
      residentKiB(pid).then((kib) => (peak = Math.max(peak, kib)), () => undefined);
    }, 10);
    const ids = Array.from({ length: 5 }, (_, i) => `big-${String(i)}`);
    try {
      for (const id of ids) sender.send({ type: 'message', to: victim, content: { n: id }, id });
      await waitFor(() => ids.every((id) => sender?.answersFor(id).length === 1), { what: 'an answer for every message', timeoutMs: 30_000 });
    } finally {
      clearInterval(sampler);
    }
    const answers = ids.map((id) => sender?.answersFor(id)[0]);
    const mostSent = Math.max(...peer.sent);
    console.log(
      `      node VmRSS ${(baseline / 1024).toFixed(0)} MiB before, peak ${(peak / 1024).toFixed(0)} MiB; ${String(peer.sent.length)} answers of 400 MiB cut, ` +
        `at most ${(mostSent / MiB).toFixed(1)} MiB of one left the peer; answers ${JSON.stringify(answers.map((a) => (a?.type === 'error' ? a.code : a?.type)))}`,
    );
    // An unanswered forward is held for the recipient (its node may come back) until the pending TTL, then EXPIRED;
    // RELAY_FAILED when the router gives up on the peer first. Either way an error, never an ack.
    for (const answer of answers) {
      expect(answer?.type).to.equal('error');
      expect(['EXPIRED', 'RELAY_FAILED']).to.include(answer?.type === 'error' ? answer.code : undefined);
    }
    expect(peer.sent.length).to.be.greaterThan(0);
    // 4 MiB read, plus what the kernel's socket buffers held when the node hung up.
    expect(mostSent).to.be.below(16 * MiB);
    // Measured +39 MiB (undici's read buffers and the garbage of four cut answers until V8 collects it); +800 before.
    expect((peak - baseline) / 1024).to.be.below(96);
  });

  it('leaves the node running and relaying between its own users', async () => {
    expect(node.process.running).to.equal(true);
    const a = await new RawUser(await requestSession(cluster.gatewayUrl, `a-${String(process.pid)}`, { avoid: [fakeId] })).welcomed();
    const b = await new RawUser(await requestSession(cluster.gatewayUrl, `b-${String(process.pid)}`, { avoid: [fakeId] })).welcomed();
    try {
      a.send({ type: 'message', to: b.userId, content: { hi: 1 }, id: 'hi' });
      await waitFor(() => b.ofType('message').length === 1, { what: 'b gets the message' });
      await waitFor(() => a.answersFor('hi').some((f) => f.type === 'ack'), { what: 'a gets the ack' });
    } finally {
      a.ws.close();
      b.ws.close();
    }
  });
});
