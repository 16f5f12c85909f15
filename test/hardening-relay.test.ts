// Issue 13, acceptance 3, 5 and 6 on real processes: deep content gets one answer and fails nobody else's batch; 100
// unopened sessions cannot make a well-behaved user's held message fail; the internal API takes outcomes only for a
// registered node's own address and refuses a forged sender without a secret; nodes whose clocks run 5 s ahead and
// 5 s behind relay as if they agreed.
import { expect } from 'chai';
import type { Session } from '@messaging-server/protocol';
import { requestSession, startCluster, waitFor, type ClusterNode, type LocalCluster } from '@messaging-server/testkit';
import { RawUser as User } from './support/raw-user.js';

const FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
/** libfaketime shifts the wall clock only (DONT_FAKE_MONOTONIC), as a skewed NTP client would. */
const skewed = (offset: string): Record<string, string> => ({ LD_PRELOAD: FAKETIME, FAKETIME: offset, DONT_FAKE_MONOTONIC: '1' });

let counter = 0;
const uid = (label: string): string => `${label}-${String(process.pid)}-${String(++counter)}`;
const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('hardening: relay across nodes with skewed clocks, deep content, held bytes, internal API (issue 13, 3, 5 and 6)', function () {
  this.timeout(180_000);
  let cluster: LocalCluster;
  let now: ClusterNode;
  let ahead: ClusterNode;
  let behind: ClusterNode;
  const users: User[] = [];

  async function sessionOn(node: ClusterNode, label: string): Promise<Session> {
    const avoid = [now, ahead, behind].filter((n) => n !== node).map((n) => n.nodeId);
    const session = await requestSession(cluster.gatewayUrl, uid(label), { avoid });
    expect(session.nodeId).to.equal(node.nodeId);
    return session;
  }
  async function online(node: ClusterNode, label: string): Promise<User> {
    const user = new User(await sessionOn(node, label));
    users.push(user);
    return user.welcomed();
  }

  before(async function () {
    this.timeout(60_000);
    // No cluster secret: the internal API's own checks are what stands.
    cluster = await startCluster({ nodes: 0, env: { MSG_LEASE_TTL_SECONDS: '3' } });
    [now, ahead, behind] = await Promise.all([
      cluster.addNode({ nodeId: 'clock-now', env: { MSG_RATE_MESSAGES_PER_SECOND: '100000', MSG_RATE_BURST: '100000' } }),
      cluster.addNode({ nodeId: 'clock-ahead', env: skewed('+5s') }),
      cluster.addNode({ nodeId: 'clock-behind', env: { ...skewed('-5s'), MSG_PENDING_TTL_MS: '120000' } }),
    ]);
    await cluster.waitForGatewaysToSee(3);
  });
  after(async () => {
    for (const user of users) user.ws.close();
    await cluster?.stop();
  });

  it('relays between nodes 5 s ahead and 5 s behind as between agreeing clocks, held messages included', async () => {
    const skew = await fetch(`${ahead.internalUrl}/healthz`).then((res) => Date.parse(res.headers.get('date') ?? '') - Date.now());
    expect(skew, 'the ahead node runs ahead').to.be.above(3000);
    const pairs: [ClusterNode, ClusterNode][] = [
      [now, ahead],
      [ahead, behind],
      [behind, now],
      [ahead, now],
    ];
    const routes = await Promise.all(pairs.map(async ([from, to]) => ({ from: await online(from, `from-${from.nodeId}`), to: await online(to, `to-${to.nodeId}`) })));
    for (const { from, to } of routes) for (let i = 0; i < 100; i += 1) from.send({ type: 'message', to: to.userId, content: i, id: `s${String(i)}` });
    const late = await sessionOn(behind, 'late');
    const sender = routes[0]?.from as User;
    sender.send({ type: 'message', to: late.userId, content: 'held', id: 'held' });
    for (const { from, to } of routes) {
      await waitFor(() => from.ofType('ack').length + from.ofType('error').length >= 100, { what: `${from.userId} answers` });
      expect(from.ofType('error'), from.userId).to.deep.equal([]);
      await waitFor(() => to.ofType('message').length >= 100, { what: `${to.userId} messages` });
      expect(to.ofType('message').map((m) => m.content)).to.deep.equal([...Array(100).keys()]);
    }
    const lateUser = new User(late);
    users.push(lateUser);
    await lateUser.welcomed();
    await waitFor(() => sender.answersFor('held').length > 0, { what: 'held message answered' });
    expect(sender.answersFor('held')).to.deep.equal([{ type: 'ack', id: 'held' }]);
    expect(lateUser.ofType('message').map((m) => m.content)).to.deep.equal(['held']);
  });

  it('answers content nested 30,000 deep once each (to oneself, another node, a pending user); the batch it rode in is all delivered', async () => {
    const sender = await online(now, 'deep-sender');
    const remote = await online(ahead, 'deep-remote');
    const pending = await sessionOn(ahead, 'deep-pending');
    const others = await Promise.all([1, 2, 3, 4].map((i) => online(now, `batch-${String(i)}`)));
    const deep = (to: string, id: string): string => `{"type":"message","to":${JSON.stringify(to)},"content":${nested(30_000)},"id":"${id}"}`;
    expect(deep(remote.userId, 'x').length).to.be.below(65_536);
    // At the same moment: the others' messages to `remote` share its lane to the other node with the deep ones.
    for (let n = 0; n < 50; n += 1) for (const other of others) other.send({ type: 'message', to: remote.userId, content: { n }, id: `b${String(n)}` });
    sender.send(deep(sender.userId, 'd-self'));
    sender.send(deep(remote.userId, 'd-remote'));
    sender.send(deep(pending.userId, 'd-pending'));
    for (let n = 50; n < 100; n += 1) for (const other of others) other.send({ type: 'message', to: remote.userId, content: { n }, id: `b${String(n)}` });

    for (const other of others) {
      await waitFor(() => other.ofType('ack').length + other.ofType('error').length >= 100, { what: `${other.userId} answers` });
      expect(other.ofType('error'), other.userId).to.deep.equal([]);
    }
    await waitFor(() => remote.ofType('message').length >= 400, { what: '400 messages at the remote user' });
    for (const other of others) {
      const got = remote.ofType('message').filter((m) => m.from === other.userId).map((m) => (m.content as { n: number }).n);
      expect(got).to.deep.equal([...Array(100).keys()]);
    }
    await waitFor(() => ['d-self', 'd-remote', 'd-pending'].every((id) => sender.answersFor(id).length > 0), { what: 'answers to the deep messages' });
    await sender.flushed();
    for (const id of ['d-self', 'd-remote', 'd-pending']) {
      const answers = sender.answersFor(id);
      expect(answers, id).to.have.length(1);
      expect(answers[0], id).to.include({ type: 'error', code: 'INVALID_MESSAGE' });
    }
    expect(sender.ofType('message')).to.deep.equal([]);
    const late = new User(pending);
    users.push(late);
    await late.welcomed();
    await late.flushed();
    expect(late.ofType('message')).to.deep.equal([]);
  });

  it('holds a well-behaved user’s message while 100 unopened sessions are flooded by a few senders', async () => {
    const ghosts = await Promise.all(Array.from({ length: 100 }, (_, i) => sessionOn(behind, `ghost${String(i)}`)));
    const attackers = await Promise.all([1, 2, 3, 4].map((i) => online(now, `attacker-${String(i)}`)));
    // 4 × 6,400 = 256 for each of the 100 ghosts: as many as the old per-node count cap (100 × MSG_PENDING_MAX).
    for (const [a, attacker] of attackers.entries()) {
      for (let round = 0; round < 64; round += 1) {
        for (let g = 0; g < 100; g += 1) attacker.send({ type: 'message', to: (ghosts[g] as Session).userId, content: 'g', id: `a${String(a)}-${String(round)}-${String(g)}` });
        if (round % 8 === 7) await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    const heldOnNode = async (): Promise<number> =>
      Number(/^msg_pending_messages(?:\{[^}]*\})? (\d+)/m.exec(await (await fetch(`${behind.internalUrl}/metrics`)).text())?.[1]);
    const refused = (): number => attackers.reduce((sum, a) => sum + a.ofType('error').filter((e) => e.code === 'QUEUE_FULL').length, 0);
    // Every attacking message is either held or refused before the well-behaved user sends.
    await waitFor(async () => (await heldOnNode()) + refused() >= 25_600, { what: 'the flood settled', timeoutMs: 30_000 });
    console.log(`      flood of 25,600 to 100 unopened sessions: ${String(await heldOnNode())} held, ${String(refused())} QUEUE_FULL`);

    const friend = await sessionOn(behind, 'friend');
    const wellBehaved = await online(now, 'well-behaved');
    wellBehaved.send({ type: 'message', to: friend.userId, content: { sdp: 'v=0' }, id: 'offer' });
    await wellBehaved.flushed();
    const friendUser = new User(friend);
    users.push(friendUser);
    await friendUser.welcomed();
    await waitFor(() => wellBehaved.answersFor('offer').length > 0, { what: 'the offer answered' });
    expect(wellBehaved.answersFor('offer')).to.deep.equal([{ type: 'ack', id: 'offer' }]);
    expect(friendUser.ofType('message').map((m) => m.content)).to.deep.equal([{ sdp: 'v=0' }]);
  });

  it('takes outcomes only for the registered address of the sending node, and refuses a forged sender without a secret', async () => {
    const recipient = await online(ahead, 'internal-recipient');
    const elsewhere = await sessionOn(behind, 'someone-elsewhere');
    const genuine = await online(now, 'genuine');
    const deliver = (body: unknown): Promise<Response> =>
      fetch(`${ahead.internalUrl}/internal/v1/deliver`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const message = (from: string, id: string) => ({ from, to: recipient.userId, content: id, id, cid: 'c1' });

    const foreignReplyTo = await deliver({ fromNode: now.nodeId, replyTo: 'http://127.0.0.1:9/collect', messages: [message(genuine.userId, 'r1')] });
    expect(foreignReplyTo.status).to.equal(403);
    expect(await foreignReplyTo.json()).to.deep.include({ error: { code: 'FORBIDDEN_SENDER', message: 'replyTo is not the registered internal address of fromNode' } });
    const unknownNode = await deliver({ fromNode: 'no-such-node', replyTo: 'http://127.0.0.1:9', messages: [message(genuine.userId, 'r2')] });
    expect(unknownNode.status).to.equal(403);

    const mixed = await deliver({ fromNode: now.nodeId, replyTo: now.internalUrl, messages: [message(elsewhere.userId, 'forged'), message(genuine.userId, 'real')] });
    expect(mixed.status).to.equal(200);
    expect(await mixed.json()).to.deep.equal({ results: [{ status: 'error', code: 'FORBIDDEN_SENDER' }, { status: 'delivered' }] });
    await waitFor(() => recipient.ofType('message').length > 0, { what: 'the real message' });
    await recipient.flushed();
    expect(recipient.ofType('message').map((m) => [m.from, m.content])).to.deep.equal([[genuine.userId, 'real']]);
  });

  it('leaves every node running', async () => {
    for (const node of [now, ahead, behind]) expect(node.process.running, node.nodeId).to.equal(true);
  });
});
