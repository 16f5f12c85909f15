import { expect } from 'chai';
import type { Session } from '@messaging-server/protocol';
import { requestSession, startCluster, TestSocket, uniqueName, waitFor, type ClusterNode, type LocalCluster } from '@messaging-server/testkit';

/** One Prometheus text exposition, parsed: `value(name, labels)` sums the samples whose labels include `labels`. */
class Exposition {
  private readonly samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  readonly types = new Map<string, string>();

  constructor(readonly text: string) {
    for (const line of text.split('\n')) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) this.types.set(type[1] as string, type[2] as string);
      if (line === '' || line.startsWith('#')) continue;
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`unparsable exposition line: ${line}`);
      const labels: Record<string, string> = {};
      for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] as string] = pair[2] as string;
      this.samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
    }
  }

  value(name: string, labels: Record<string, string> = {}): number {
    return this.samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
  }

  has(name: string): boolean {
    return this.samples.some((s) => s.name === name);
  }
}


async function scrape(url: string): Promise<Exposition> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
  expect(res.status).to.equal(200);
  expect(res.headers.get('content-type')).to.match(/^text\/plain/);
  return new Exposition(await res.text());
}

describe('metrics on the gateway and on each node (/metrics, msg_*)', function () {
  this.timeout(60_000);
  let cluster: LocalCluster;
  let nodeA: ClusterNode;
  let nodeB: ClusterNode;
  const sockets: TestSocket[] = [];

  const gateway = (): Promise<Exposition> => scrape(cluster.gatewayUrl);
  const node = (n: ClusterNode): Promise<Exposition> => scrape(n.internalUrl);

  async function sessionOn(target: ClusterNode, label: string): Promise<Session> {
    const avoid = [...cluster.nodes.keys()].filter((id) => id !== target.nodeId);
    const session = await requestSession(cluster.gatewayUrl, uniqueName(label), { avoid });
    expect(session.nodeId).to.equal(target.nodeId);
    return session;
  }

  async function connectOn(target: ClusterNode, label: string): Promise<{ session: Session; socket: TestSocket }> {
    const session = await sessionOn(target, label);
    const socket = TestSocket.forSession(session);
    sockets.push(socket);
    await socket.welcomed();
    return { session, socket };
  }

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 2, gateways: 1, env: { MSG_CLUSTER_SECRET: 'metrics-secret', MSG_LEASE_TTL_SECONDS: '2', MSG_MAX_UNCONFIRMED: '4' } });
    [nodeA, nodeB] = [...cluster.nodes.values()] as [ClusterNode, ClusterNode];
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await cluster?.stop();
  });

  it('exposes the documented metric families, all named msg_*, on the gateway and on a node', async () => {
    const [g, n] = await Promise.all([gateway(), node(nodeA)]);
    for (const name of [
      'msg_connect_requests_total',
      'msg_connect_latency_seconds',
      'msg_allocations_total',
      'msg_nodes',
      'msg_registry_synced',
      'msg_lease_state',
      'msg_etcd_operation_seconds',
      'msg_etcd_errors_total',
      'msg_memcached_operation_seconds',
      'msg_memcached_errors_total',
      'msg_session_store_errors_total',
      'msg_build_info',
    ]) {
      expect(g.types.has(name), `gateway ${name}`).to.equal(true);
    }
    for (const name of [
      'msg_connections',
      'msg_handshakes_total',
      'msg_messages_relayed_total',
      'msg_acks_total',
      'msg_message_errors_total',
      'msg_pending_messages',
      'msg_relay_latency_seconds',
      'msg_etcd_operation_seconds',
      'msg_etcd_errors_total',
      'msg_memcached_operation_seconds',
      'msg_memcached_errors_total',
      'msg_lease_state',
      'msg_draining',
      'msg_unconfirmed_messages',
      'msg_receipts_total',
      'msg_build_info',
    ]) {
      expect(n.types.has(name), `node ${name}`).to.equal(true);
    }
    expect(n.value('msg_lease_state')).to.equal(1);
    for (const [text, role] of [[g.text, 'gateway'], [n.text, 'node']] as const)
      expect(text).to.match(new RegExp(`^msg_build_info\\{[^}]*version="\\d+\\.\\d+\\.\\d+"[^}]*role="${role}"[^}]*\\} 1$`, 'm'));
    // The gateway serves (and the cluster counts as started) before its own registration is through on a busy machine.
    await waitFor(async () => (await gateway()).value('msg_lease_state') === 1, { what: 'the gateway lease held' });
    expect(n.value('msg_draining')).to.equal(0);
    expect(g.value('msg_nodes', { state: 'active' })).to.equal(2);
    // Everything this project defines is msg_*; the rest is prom-client's process defaults.
    const own = [...g.types.keys(), ...n.types.keys()].filter((name) => !/^(process_|nodejs_)/.test(name));
    for (const name of own) expect(name).to.match(/^msg_/);
  });

  it('counts connects and rejects by code, allocations and handshakes, and the connection gauge moves', async () => {
    const [g0, a0] = await Promise.all([gateway(), node(nodeA)]);
    const { session } = await connectOn(nodeA, 'conn');
    const bad = await fetch(`${cluster.gatewayUrl}/connect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'not allowed!' }),
    });
    expect(bad.status).to.equal(400);
    const wrongKey = TestSocket.forSession(await sessionOn(nodeA, 'wrongkey'), { key: 'not-the-key' });
    sockets.push(wrongKey);
    expect((await wrongKey.closed()).code).to.equal(4500);

    const [g1, a1] = await Promise.all([gateway(), node(nodeA)]);
    expect(g1.value('msg_connect_requests_total', { result: 'ok' }) - g0.value('msg_connect_requests_total', { result: 'ok' })).to.equal(2);
    expect(g1.value('msg_connect_requests_total', { result: 'INVALID_USER_ID' }) - g0.value('msg_connect_requests_total', { result: 'INVALID_USER_ID' })).to.equal(1);
    expect(g1.value('msg_connect_latency_seconds_count') - g0.value('msg_connect_latency_seconds_count')).to.equal(3);
    expect(g1.value('msg_allocations_total', { node_id: session.nodeId }) - g0.value('msg_allocations_total', { node_id: session.nodeId })).to.equal(2);
    expect(a1.value('msg_handshakes_total', { result: 'accepted' }) - a0.value('msg_handshakes_total', { result: 'accepted' })).to.equal(1);
    expect(a1.value('msg_handshakes_total', { result: 'invalid_credentials' }) - a0.value('msg_handshakes_total', { result: 'invalid_credentials' })).to.equal(1);
    expect(a1.value('msg_connections') - a0.value('msg_connections')).to.equal(1);
  });

  it('counts messages relayed locally and across nodes, acks, errors by code, and times node-to-node relays', async () => {
    const alice = await connectOn(nodeA, 'alice');
    const carol = await connectOn(nodeA, 'carol');
    const bob = await connectOn(nodeB, 'bob');
    const [a0, b0] = await Promise.all([node(nodeA), node(nodeB)]);

    alice.socket.send({ to: carol.session.userId, content: 'local', id: 'l1' });
    // One remote message at a time, so each is its own node-to-node request: two timed relays, not one batch.
    for (const id of ['r1', 'r2']) {
      alice.socket.send({ to: bob.session.userId, content: 'remote', id });
      await alice.socket.waitForFrame((f) => f.type === 'ack' && f.id === id);
    }
    alice.socket.send({ to: uniqueName('nobody'), content: 'x', id: 'u1' });
    alice.socket.send('not json');
    await alice.socket.waitForFrame((f) => f.type === 'ack' && f.id === 'l1');
    await alice.socket.waitForFrame((f) => f.type === 'error' && f.id === 'u1');
    await alice.socket.waitForFrame((f) => f.type === 'error' && f.code === 'INVALID_MESSAGE');

    const [a1, b1] = await Promise.all([node(nodeA), node(nodeB)]);
    const delta = (after: Exposition, before: Exposition, name: string, labels: Record<string, string> = {}): number =>
      after.value(name, labels) - before.value(name, labels);
    expect(delta(a1, a0, 'msg_messages_relayed_total', { path: 'local' })).to.equal(1);
    expect(delta(a1, a0, 'msg_messages_relayed_total', { path: 'remote' })).to.equal(2);
    // On bob's node the two forwarded messages are handed to a local connection.
    expect(delta(b1, b0, 'msg_messages_relayed_total', { path: 'local' })).to.equal(2);
    expect(delta(a1, a0, 'msg_acks_total')).to.equal(3);
    expect(delta(a1, a0, 'msg_message_errors_total', { code: 'PEER_UNAVAILABLE' })).to.equal(1);
    expect(delta(a1, a0, 'msg_message_errors_total', { code: 'INVALID_MESSAGE' })).to.equal(1);
    expect(delta(a1, a0, 'msg_relay_latency_seconds_count')).to.equal(2);
    expect(a1.value('msg_relay_latency_seconds_bucket', { le: '+Inf' })).to.equal(a1.value('msg_relay_latency_seconds_count'));
  });

  it('shows the pending queue depth for a recipient that has not connected yet, and empties it on connect', async () => {
    const sender = await connectOn(nodeA, 'sender');
    const late = await sessionOn(nodeB, 'late');
    for (let i = 0; i < 3; i++) sender.socket.send({ to: late.userId, content: i, id: `p${String(i)}` });
    await waitFor(async () => (await node(nodeB)).value('msg_pending_messages') === 3, { what: 'msg_pending_messages 3' });
    const socket = TestSocket.forSession(late);
    sockets.push(socket);
    await socket.welcomed();
    await waitFor(() => socket.framesOfType('message').length === 3, { what: 'the held messages' });
    expect((await node(nodeB)).value('msg_pending_messages')).to.equal(0);
    for (let i = 0; i < 3; i++) await sender.socket.waitForFrame((f) => f.type === 'ack' && f.id === `p${String(i)}`);
  });

  it('times etcd and memcached operations on both the gateway and the node', async () => {
    const [g0, a0] = await Promise.all([gateway(), node(nodeA)]);
    await connectOn(nodeA, 'backend');
    // The node publishes its load (an etcd write) at most once a second after a change.
    await waitFor(async () => (await node(nodeA)).value('msg_etcd_operation_seconds_count', { operation: 'put_load' }) > a0.value('msg_etcd_operation_seconds_count', { operation: 'put_load' }), {
      what: 'a timed put_load on the node',
    });
    const [g1, a1] = await Promise.all([gateway(), node(nodeA)]);
    // /connect for a user the gateway has not seen writes the session by one add (`create`), with nothing to read
    // first; the handshake verifies it inside one compare-and-set (`update`) and reads it no other way.
    const count = (m: typeof g0, operation: string): number => m.value('msg_memcached_operation_seconds_count', { operation });
    expect(count(g1, 'create')).to.be.greaterThan(count(g0, 'create'));
    expect(count(g1, 'get'), 'no read before the add of a new user').to.equal(count(g0, 'get'));
    expect(count(a1, 'update')).to.be.greaterThan(count(a0, 'update'));
    expect(count(a1, 'get'), 'no separate read in the handshake').to.equal(count(a0, 'get'));
    // Each process registered once and opened its watch once when it started; nothing has failed since (the outage
    // comes in the last test of this file).
    for (const e of [g1, a1]) {
      expect(e.value('msg_etcd_operation_seconds_count', { operation: 'register' })).to.equal(1);
      expect(e.value('msg_etcd_operation_seconds_count', { operation: 'watch' })).to.equal(1);
    }
    expect(a1.value('msg_memcached_operation_seconds_sum')).to.be.greaterThan(0);
  });

  it('shows messages unconfirmed on a receipts connection, counts its receipts, and its 4006 close by reason', async () => {
    const sender = await connectOn(nodeA, 'rsender');
    const session = await sessionOn(nodeA, 'rrecipient');
    const recipient = TestSocket.forSession(session, { address: `${session.listeningAddress}?receipts=1`, transports: ['websocket'] });
    sockets.push(recipient);
    await recipient.welcomed();
    const a0 = await node(nodeA);
    for (let i = 0; i < 3; i++) sender.socket.send({ to: session.userId, content: i, id: `u${String(i)}` });
    await waitFor(() => recipient.framesOfType('message').length === 3, { what: 'three messages with a seq' });
    expect((await node(nodeA)).value('msg_unconfirmed_messages') - a0.value('msg_unconfirmed_messages')).to.equal(3);
    recipient.send({ type: 'receipt', seq: 3 });
    for (let i = 0; i < 3; i++) await sender.socket.waitForFrame((f) => f.type === 'ack' && f.id === `u${String(i)}`);
    const a1 = await node(nodeA);
    expect(a1.value('msg_unconfirmed_messages') - a0.value('msg_unconfirmed_messages')).to.equal(0);
    expect(a1.value('msg_receipts_total') - a0.value('msg_receipts_total')).to.equal(1);
    // Past MSG_MAX_UNCONFIRMED (4 here) for a second, the node closes the connection with 4006.
    for (let i = 3; i < 8; i++) sender.socket.send({ to: session.userId, content: i, id: `u${String(i)}` });
    expect(await recipient.closed()).to.deep.equal({ code: 4006, reason: 'receipts_stalled' });
    const a2 = await node(nodeA);
    expect(a2.value('msg_connections_closed_total', { reason: 'receipts_stalled' }) - a1.value('msg_connections_closed_total', { reason: 'receipts_stalled' })).to.equal(1);
    expect(a2.value('msg_unconfirmed_messages') - a0.value('msg_unconfirmed_messages'), 'what it held is not counted as unconfirmed once it closed').to.equal(0);
    // Back with a new session: what it held comes again, and once confirmed every sender has its ack (and nothing
    // stays held for a moving user, whose session lookups would run into the next test's memcached counts).
    const again = await requestSession(cluster.gatewayUrl, session.userId, { avoid: [nodeB.nodeId] });
    const back = TestSocket.forSession(again, { address: `${again.listeningAddress}?receipts=1`, transports: ['websocket'] });
    sockets.push(back);
    await back.welcomed();
    await waitFor(() => back.framesOfType('message').length >= 5, { what: 'the five unconfirmed ones again' });
    back.send({ type: 'receipt', seq: back.framesOfType('message').at(-1)?.seq });
    for (let i = 3; i < 8; i++) await sender.socket.waitForFrame((f) => f.type === 'ack' && f.id === `u${String(i)}`);
    expect((await node(nodeA)).value('msg_receipts_total') - a1.value('msg_receipts_total')).to.equal(1);
  });

  it('shows the drain state on the node and the draining node on the gateway', async () => {
    // A slow drain rate keeps the node draining (and scrapable) for a few seconds.
    const slow = await cluster.addNode({ env: { MSG_DRAIN_RATE_PER_SECOND: '1' } });
    await cluster.waitForGatewaysToSee(3);
    for (let i = 0; i < 4; i++) await connectOn(slow, 'drained');
    expect((await node(slow)).value('msg_draining')).to.equal(0);
    const drained = cluster.drainNode(slow.nodeId);
    await waitFor(async () => (await node(slow)).value('msg_draining') === 1, { what: 'msg_draining 1' });
    await waitFor(async () => (await gateway()).value('msg_nodes', { state: 'draining' }) === 1, { what: 'msg_nodes{state="draining"} 1' });
    expect((await drained).code).to.equal(0);
    await waitFor(async () => (await gateway()).value('msg_nodes', { state: 'draining' }) === 0, { what: 'the drained node gone' });
  });

  it('counts memcached and etcd errors, and shows the lease lost and held again across an etcd outage', async () => {
    const memcached = cluster.memcached;
    const etcd = cluster.etcd;
    if (!memcached || !etcd) throw new Error('the cluster runs its own etcd and memcached');
    const sender = await connectOn(nodeA, 'outage');
    const [g0, a0] = await Promise.all([gateway(), node(nodeA)]);

    await memcached.stop();
    try {
      const refused = await fetch(`${cluster.gatewayUrl}/connect`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: uniqueName('down') }),
      });
      expect(refused.status).to.equal(503);
      // An unknown recipient needs a session lookup on the node, which fails now. (Its answer waits: under v1.1 the
      // node holds a message whose recipient it cannot look up, and keeps looking, until the resume window ends.)
      sender.socket.send({ to: uniqueName('unknown'), content: 'x', id: 'm-down' });
      const getErrors = (e: Exposition): number => e.value('msg_memcached_errors_total', { operation: 'get' });
      await waitFor(async () => getErrors(await node(nodeA)) > getErrors(a0), { what: "the node's failed session lookup counted" });
    } finally {
      await memcached.restart();
    }
    const [g1, a1] = await Promise.all([gateway(), node(nodeA)]);
    expect(g1.value('msg_memcached_errors_total')).to.be.greaterThan(g0.value('msg_memcached_errors_total'));
    expect(g1.value('msg_connect_requests_total', { result: 'SESSION_STORE_UNAVAILABLE' })).to.be.greaterThan(g0.value('msg_connect_requests_total', { result: 'SESSION_STORE_UNAVAILABLE' }));
    expect(a1.value('msg_memcached_errors_total', { operation: 'get' })).to.be.greaterThan(a0.value('msg_memcached_errors_total', { operation: 'get' }));

    await etcd.stop();
    try {
      // Keepalives fail past the 2 s TTL: the lease is lost on both.
      await waitFor(async () => (await node(nodeA)).value('msg_lease_state') === 0, { timeoutMs: 20_000, what: 'node lease lost' });
      await waitFor(async () => (await gateway()).value('msg_lease_state') === 0, { timeoutMs: 20_000, what: 'gateway lease lost' });
      const [g2, a2] = await Promise.all([gateway(), node(nodeA)]);
      expect(g2.value('msg_etcd_errors_total', { operation: 'watch' })).to.be.greaterThan(g1.value('msg_etcd_errors_total', { operation: 'watch' }));
      expect(a2.value('msg_etcd_errors_total')).to.be.greaterThan(a1.value('msg_etcd_errors_total'));
      expect(g2.value('msg_registry_synced')).to.equal(0);
    } finally {
      await etcd.restart();
    }
    await waitFor(async () => (await node(nodeA)).value('msg_lease_state') === 1, { timeoutMs: 30_000, what: 'node lease held again' });
    await waitFor(async () => (await gateway()).value('msg_lease_state') === 1, { timeoutMs: 30_000, what: 'gateway lease held again' });
  });
});
