import { expect } from 'chai';
import { MemcachedSessionStore, silentLogger } from '@messaging-server/core';
import type { Session } from '@messaging-server/protocol';
import {
  startCluster,
  TestSocket,
  uniqueName,
  waitFor,
  type ClusterNode,
  type LocalCluster,
  type ManagedProcess,
} from '@messaging-server/testkit';

const SECRET = 'logs-test-cluster-secret-7c1e';
// SDP and ICE that a browser would send: an IP address and ICE credentials that must not reach info logs.
const SDP = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  'a=ice-ufrag:Qx7lfPwJ',
  'a=ice-pwd:9fQeB6sQnNxU1mR7kzYvT3aW',
  'a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB',
  'a=candidate:842163049 1 udp 1677729535 203.0.113.77 61665 typ srflx raddr 192.168.1.23 rport 61665',
].join('\r\n');
const SDP_MARKERS = ['a=ice-pwd', '9fQeB6sQnNxU1mR7kzYvT3aW', 'Qx7lfPwJ', '203.0.113.77', '192.168.1.23', '4611731400430051336', 'a=fingerprint'];

interface LogLine {
  level: number;
  time: string;
  msg: string;
  [field: string]: unknown;
}

/** Every log line of every process, parsed; a line that is not JSON fails the test (logs must be structured). */
function parseLogs(processes: readonly ManagedProcess[]): { text: string; lines: (LogLine & { process: string })[] } {
  const lines: (LogLine & { process: string })[] = [];
  let text = '';
  for (const proc of processes) {
    text += proc.logs();
    for (const raw of proc.logs().split('\n')) {
      if (raw.trim() === '') continue;
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        throw new Error(`${proc.name} wrote a line that is not JSON: ${raw}`);
      }
      lines.push({ ...line, process: proc.name });
    }
  }
  return { text, lines };
}

async function sessionOn(cluster: LocalCluster, target: string, userId: string, requestId?: string): Promise<Session> {
  const avoid = [...cluster.nodes.keys()].filter((id) => id !== target);
  const res = await fetch(`${cluster.gatewayUrl}/connect`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(requestId ? { 'x-request-id': requestId } : {}) },
    body: JSON.stringify({ userId, avoid }),
    signal: AbortSignal.timeout(5000),
  });
  expect(res.status).to.equal(200);
  const session = (await res.json()) as Session;
  expect(session.nodeId).to.equal(target);
  return session;
}

for (const level of ['info', 'debug'] as const) {
  describe(`logs of a full session at ${level === 'info' ? 'the default level' : 'debug level'}`, function () {
    this.timeout(60_000);
    let cluster: LocalCluster;
    let processes: ManagedProcess[];
    const keys: string[] = [];
    const requestId = `req-${uniqueName('logs')}`;
    let alice: Session;
    let bob: Session;
    let drainedNode: ClusterNode;

    before(async function () {
      this.timeout(90_000);
      cluster = await startCluster({
        nodes: 2,
        gateways: 1,
        env: { MSG_CLUSTER_SECRET: SECRET, MSG_LEASE_TTL_SECONDS: '2', ...(level === 'debug' ? { MSG_LOG_LEVEL: 'debug' } : {}) },
      });
      // Drained nodes leave cluster.nodes; their logs are kept through the process objects.
      processes = [...cluster.gateways.map((g) => g.process), ...[...cluster.nodes.values()].map((n) => n.process)];
      const [nodeA, nodeB] = [...cluster.nodes.keys()] as [string, string];

      // connect: alice on one node (with a request id of our own), bob on the other.
      alice = await sessionOn(cluster, nodeA, uniqueName('alice'), requestId);
      bob = await sessionOn(cluster, nodeB, uniqueName('bob'));
      keys.push(alice.listeningKey, bob.listeningKey);
      const aliceSocket = TestSocket.forSession(alice);
      const bobSocket = TestSocket.forSession(bob);
      await Promise.all([aliceSocket.welcomed(), bobSocket.welcomed()]);

      // messages with SDP and ICE content, both ways, across nodes; plus the error paths.
      aliceSocket.send({ type: 'message', to: bob.userId, content: { type: 'offer', sdp: SDP }, id: 'offer-1' });
      bobSocket.send({ to: alice.userId, content: { type: 'answer', sdp: SDP }, id: 'answer-1' });
      aliceSocket.send({ to: bob.userId, content: { type: 'candidate', candidate: 'candidate:842163049 1 udp 1677729535 203.0.113.77 61665 typ srflx' }, id: 'ice-1' });
      aliceSocket.send({ to: uniqueName('nobody'), content: { sdp: SDP }, id: 'lost-1' });
      aliceSocket.send(`{"to":"${bob.userId}","content":"${SDP.replaceAll('\r\n', ' ')}`); // truncated JSON
      await aliceSocket.waitForFrame((f) => f.type === 'ack' && f.id === 'ice-1');
      await bobSocket.waitForFrame((f) => f.type === 'ack' && f.id === 'answer-1');
      await aliceSocket.waitForFrame((f) => f.type === 'error' && f.id === 'lost-1');
      await aliceSocket.waitForFrame((f) => f.type === 'error' && f.code === 'INVALID_MESSAGE');

      // a wrong key and a reused key are refused.
      const wrongKey = `wrong${alice.listeningKey.slice(5)}`;
      keys.push(wrongKey);
      const wrong = TestSocket.forSession(alice, { key: wrongKey });
      expect((await wrong.closed()).code).to.equal(4500);
      const reused = TestSocket.forSession(alice);
      expect((await reused.closed()).code).to.equal(4502);

      // replace: a newer /connect for alice closes her first connection with 4503.
      const alice2 = await sessionOn(cluster, nodeA, alice.userId);
      keys.push(alice2.listeningKey);
      expect((await aliceSocket.closed()).code).to.equal(4503);
      const alice2Socket = TestSocket.forSession(alice2);
      await alice2Socket.welcomed();
      alice2Socket.send({ to: bob.userId, content: { type: 'offer', sdp: SDP }, id: 'offer-2' });
      await alice2Socket.waitForFrame((f) => f.type === 'ack' && f.id === 'offer-2');

      // close: bob leaves, and his session goes with him.
      bobSocket.close();
      await waitFor(async () => (await sessionStatus(cluster, bob.userId)) === 'gone', { what: "bob's session deleted" });

      // drain: alice's node drains (SIGTERM) and closes her with 4000.
      drainedNode = cluster.node(nodeA);
      const status = await cluster.drainNode(nodeA);
      expect(status.code).to.equal(0);
      expect((await alice2Socket.closed()).code).to.equal(4000);
      await cluster.waitForGatewaysToSee(1);
    });
    after(async () => cluster?.stop());

    it('never contains a listeningKey or the cluster secret, in any process, at any level', () => {
      const { text } = parseLogs(processes);
      expect(keys).to.have.length(4);
      for (const key of keys) expect(text, 'a listeningKey in the logs').to.not.contain(key);
      expect(text).to.not.contain(SECRET);
    });

    if (level === 'info') {
      it('carries no SDP or ICE content at info level', () => {
        const { text } = parseLogs(processes);
        for (const marker of SDP_MARKERS) expect(text, `${marker} in the logs`).to.not.contain(marker);
      });
    }

    it('is structured JSON lines with a level, an ISO time and a static lowercase message', () => {
      const { lines } = parseLogs(processes);
      expect(lines.length).to.be.greaterThan(5);
      for (const line of lines) {
        expect(line.level, JSON.stringify(line)).to.be.a('number');
        expect(Date.parse(line.time), JSON.stringify(line)).to.be.a('number').and.not.NaN;
        expect(line.msg, JSON.stringify(line)).to.be.a('string').and.equal(line.msg.toLowerCase());
        // Values go in fields, never in the message.
        for (const id of [alice.userId, bob.userId, drainedNode.nodeId]) expect(line.msg).to.not.contain(id);
      }
      if (level === 'debug') expect(lines.some((l) => l.level === 20)).to.equal(true);
      else expect(lines.some((l) => l.level < 30)).to.equal(false);
    });

    it('carries nodeId on every node line, userId where a user is concerned, and the request id on the gateway', () => {
      const { lines } = parseLogs(processes);
      const nodeLines = lines.filter((l) => l.process.startsWith('node-'));
      expect(nodeLines.length).to.be.greaterThan(0);
      for (const line of nodeLines) expect(line['nodeId'], JSON.stringify(line)).to.equal(line.process);

      const allocated = lines.find((l) => l.process.startsWith('gateway') && l['reqId'] === requestId);
      expect(allocated, `a gateway line with reqId ${requestId}`).to.not.equal(undefined);
      expect(allocated).to.include({ userId: alice.userId, nodeId: alice.nodeId });

      // The refused handshake names the user and the node it happened on.
      const rejected = nodeLines.find((l) => l.msg === 'handshake rejected');
      expect(rejected).to.include({ userId: alice.userId, nodeId: drainedNode.nodeId, reason: 'invalid_credentials' });

      const drain = nodeLines.filter((l) => l.process === drainedNode.nodeId && /drain/.test(l.msg));
      expect(drain.length, 'drain lines on the drained node').to.be.greaterThan(0);

      if (level === 'debug') {
        const connected = nodeLines.filter((l) => l['userId'] === bob.userId);
        expect(connected.length, "debug lines about bob's connection").to.be.greaterThan(0);
      }
    });
  });
}

/** Whether memcached still holds the user's session (a closed connection deletes the one it acked). */
async function sessionStatus(cluster: LocalCluster, userId: string): Promise<'present' | 'gone'> {
  const env = cluster.baseEnv();
  const store = new MemcachedSessionStore({
    servers: String(env['MSG_MEMCACHED_SERVERS']).split(','),
    prefix: String(env['MSG_MEMCACHED_PREFIX']),
    logger: silentLogger,
  });
  try {
    return (await store.get(userId)) ? 'present' : 'gone';
  } finally {
    await store.close();
  }
}
