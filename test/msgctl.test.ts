import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Session } from '@messaging-server/protocol';
import { freePort, requestSession, startCluster, TestSocket, uniqueName, waitFor, type LocalCluster } from '@messaging-server/testkit';

const MSGCTL = fileURLToPath(new URL('../packages/cli/dist/bin/msgctl.js', import.meta.url));
const SECRET = 'msgctl-test-secret';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** msgctl as an operator runs it: a real process, with the environment given here only. */
function msgctl(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MSGCTL, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

interface WatchEvent {
  type: string;
  kind?: string;
  id?: string;
  value?: { state?: string };
}

/** `msgctl watch` running in the background, its JSON lines parsed as they come. */
function startWatch(args: string[]): { events: WatchEvent[]; stop(): Promise<number | null> } {
  const watch: ChildProcess = spawn(process.execPath, [MSGCTL, 'watch', ...args], { env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const events: WatchEvent[] = [];
  let buffered = '';
  watch.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) events.push(JSON.parse(line) as WatchEvent);
  });
  const exited = new Promise<number | null>((resolve) => watch.once('exit', (code) => resolve(code)));
  return {
    events,
    stop() {
      watch.kill('SIGTERM');
      return exited;
    },
  };
}


interface NodeRow {
  nodeId: string;
  state: string;
  listeningAddress: string;
  connections: number | null;
  leaseTtlSeconds: number | null;
  startedAt: string;
}

describe('msgctl against a cluster of real processes', function () {
  this.timeout(60_000);
  let cluster: LocalCluster;
  let target: string[];
  const sockets: TestSocket[] = [];

  async function nodesJson(): Promise<NodeRow[]> {
    const run = await msgctl(['nodes', '--json', ...target]);
    expect(run.code, run.stderr).to.equal(0);
    return JSON.parse(run.stdout) as NodeRow[];
  }

  /** /connect (steered to `nodeId` with `avoid`) and a welcomed SockJS connection. */
  async function connectTo(userId: string, nodeId?: string): Promise<Session> {
    const avoid = nodeId === undefined ? undefined : [...cluster.nodes.keys()].filter((id) => id !== nodeId);
    const session = await requestSession(cluster.gatewayUrl, userId, avoid ? { avoid } : {});
    if (nodeId !== undefined) expect(session.nodeId).to.equal(nodeId);
    const socket = TestSocket.forSession(session);
    sockets.push(socket);
    await socket.welcomed();
    return session;
  }

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 2, gateways: 1, env: { MSG_CLUSTER_SECRET: SECRET, MSG_LEASE_TTL_SECONDS: '3' } });
    const env = cluster.baseEnv();
    target = [
      '--endpoints',
      cluster.etcdEndpoint,
      '--prefix',
      cluster.prefix,
      '--memcached-servers',
      String(env['MSG_MEMCACHED_SERVERS']),
      '--memcached-prefix',
      String(env['MSG_MEMCACHED_PREFIX']),
    ];
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await cluster?.stop();
  });

  it('nodes --json lists every node with its state, address, lease and connection count', async () => {
    const rows = await nodesJson();
    expect(rows.map((r) => r.nodeId)).to.deep.equal([...cluster.nodes.keys()].sort());
    for (const row of rows) {
      const node = cluster.node(row.nodeId);
      expect(Object.keys(row).sort()).to.deep.equal(['connections', 'leaseTtlSeconds', 'listeningAddress', 'nodeId', 'startedAt', 'state']);
      expect(row.state).to.equal('active');
      expect(row.listeningAddress).to.equal(node.listeningAddress);
      expect(row.leaseTtlSeconds).to.be.a('number').within(0, 3);
      expect(Date.parse(row.startedAt)).to.be.within(Date.now() - 120_000, Date.now());
    }

    const [first, second] = [...cluster.nodes.keys()] as [string, string];
    const before = new Map(rows.map((r) => [r.nodeId, r.connections ?? 0]));
    await connectTo(uniqueName('count-a'), first);
    await connectTo(uniqueName('count-b'), first);
    await connectTo(uniqueName('count-c'), second);
    // Load is published at most once a second.
    await waitFor(
      async () => {
        const now = new Map((await nodesJson()).map((r) => [r.nodeId, r.connections ?? 0]));
        return now.get(first) === (before.get(first) ?? 0) + 2 && now.get(second) === (before.get(second) ?? 0) + 1;
      },
      { timeoutMs: 15_000, intervalMs: 200, what: 'connection counts in msgctl nodes' },
    );
  });

  it('nodes prints a readable table without --json', async () => {
    const run = await msgctl(['nodes', ...target]);
    expect(run.code, run.stderr).to.equal(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).to.match(/^NODEID\s+STATE\s+LISTENINGADDRESS\s+CONNECTIONS\s+LEASE\s+AGE$/);
    for (const nodeId of cluster.nodes.keys()) expect(lines.some((l) => l.startsWith(nodeId) && /\bactive\b/.test(l))).to.equal(true);
  });

  it('gateways --json lists the gateway with its address', async () => {
    const run = await msgctl(['gateways', '--json', ...target]);
    expect(run.code, run.stderr).to.equal(0);
    const rows = JSON.parse(run.stdout) as { gatewayId: string; address: string; startedAt: string }[];
    expect(rows).to.have.length(1);
    expect(Object.keys(rows[0] ?? {}).sort()).to.deep.equal(['address', 'gatewayId', 'startedAt']);
    expect(rows[0]?.address).to.contain(`:${String(cluster.gateways[0]?.port)}`);
  });

  it('session --json shows the record without its key and that its node is alive; exit 1 for an unknown user', async () => {
    const userId = uniqueName('sess');
    const session = await connectTo(userId);
    const run = await msgctl(['session', userId, '--json', ...target]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.not.contain(session.listeningKey);
    const answer = JSON.parse(run.stdout) as { session: Record<string, unknown>; nodeAlive: boolean };
    expect(answer.nodeAlive).to.equal(true);
    expect(answer.session).to.not.have.property('listeningKey');
    expect(answer.session).to.include({ userId, nodeId: session.nodeId, listeningAddress: session.listeningAddress, acked: true });

    const table = await msgctl(['session', userId, ...target]);
    expect(table.code).to.equal(0);
    expect(table.stdout).to.contain(session.nodeId).and.not.contain(session.listeningKey);

    const unknown = await msgctl(['session', uniqueName('nobody'), '--json', ...target]);
    expect(unknown.code).to.equal(1);
    expect(unknown.stdout).to.equal('');
    expect(unknown.stderr).to.match(/no session/);
  });

  it('watch prints one JSON line per registry change: a node that joins appears', async () => {
    const watch = startWatch(target);
    const events = watch.events;
    let added: string | undefined;
    try {
      // The snapshot comes first: every live node.
      await waitFor(() => [...cluster.nodes.keys()].every((id) => events.some((e) => e.type === 'put' && e.kind === 'node' && e.id === id)), {
        what: 'the snapshot from msgctl watch',
      });
      added = (await cluster.addNode()).nodeId;
      await waitFor(() => events.some((e) => e.type === 'put' && e.kind === 'node' && e.id === added && e.value?.state === 'active'), {
        what: `a put line for ${added}`,
      });
    } finally {
      expect(await watch.stop()).to.equal(0);
    }
    if (added) await cluster.drainNode(added);
  });

  it('drain: the node shows draining, then is gone; the node exits 0; the watch sees put(draining) then delete', async () => {
    // A slow drain rate keeps the node in `draining` long enough to be seen by polling.
    const node = await cluster.addNode({ env: { MSG_DRAIN_RATE_PER_SECOND: '1' } });
    await cluster.waitForGatewaysToSee(cluster.nodes.size);
    for (let i = 0; i < 6; i++) await connectTo(uniqueName('drain'), node.nodeId);

    const refused = await msgctl(['drain', node.nodeId, ...target]);
    expect(refused.code, 'drain without the cluster secret').to.equal(3);
    expect(refused.stderr).to.contain('MSG_CLUSTER_SECRET');
    expect((await nodesJson()).find((r) => r.nodeId === node.nodeId)?.state).to.equal('active');

    const watch = startWatch(target);
    await waitFor(() => watch.events.some((e) => e.kind === 'node' && e.id === node.nodeId), { what: 'the watch snapshot' });
    const states: string[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const row = (await nodesJson()).find((r) => r.nodeId === node.nodeId);
        const state = row?.state ?? 'gone';
        if (states.at(-1) !== state) states.push(state);
        if (state === 'gone') return;
      }
    })();
    const drain = await msgctl(['drain', node.nodeId, '--json', ...target], { MSG_CLUSTER_SECRET: SECRET });
    polling = false;
    await poller;
    expect(drain.code, drain.stderr).to.equal(0);
    expect(drain.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown)).to.deep.equal([
      { nodeId: node.nodeId, state: 'draining' },
      { nodeId: node.nodeId, state: 'gone' },
    ]);
    expect(states).to.include('draining');
    expect(states.at(-1)).to.equal('gone');
    expect(states.indexOf('draining')).to.be.greaterThan(-1).and.lessThan(states.indexOf('gone'));
    expect(await node.process.exited).to.deep.equal({ code: 0, signal: null });
    await waitFor(() => watch.events.some((e) => e.type === 'delete' && e.kind === 'node' && e.id === node.nodeId), { what: 'the delete line' });
    expect(await watch.stop()).to.equal(0);
    const mine = watch.events.filter((e) => e.kind === 'node' && e.id === node.nodeId).map((e) => (e.type === 'delete' ? 'delete' : e.value?.state));
    expect(mine.slice(-2)).to.deep.equal(['draining', 'delete']);
    cluster.nodes.delete(node.nodeId);
    expect((await nodesJson()).map((r) => r.nodeId)).to.not.include(node.nodeId);

    const again = await msgctl(['drain', node.nodeId, ...target], { MSG_CLUSTER_SECRET: SECRET });
    expect(again.code).to.equal(1);
    expect(again.stderr).to.contain(node.nodeId);
  });

  it('has clear exit codes: 2 usage, 3 backend unreachable, 78 invalid configuration, documented in --help', async () => {
    const help = await msgctl(['--help']);
    expect(help.code).to.equal(0);
    for (const code of ['0', '1', '2', '3', '78']) expect(help.stdout).to.match(new RegExp(`^\\s+${code}\\s+\\S`, 'm'));
    for (const flag of ['--endpoints', '--prefix', '--json']) expect(help.stdout).to.contain(flag);

    expect((await msgctl([])).code).to.equal(2);
    expect((await msgctl(['bogus', ...target])).code).to.equal(2);
    expect((await msgctl(['session', ...target])).code).to.equal(2);
    expect((await msgctl(['nodes', 'extra', ...target])).code).to.equal(2);
    const badFlag = await msgctl(['nodes', '--no-such-flag', ...target]);
    expect(badFlag.code).to.equal(2);
    expect(badFlag.stderr).to.contain('--no-such-flag');
    const badConfig = await msgctl(['nodes', '--lease-ttl-seconds', '0', ...target]);
    expect(badConfig.code).to.equal(78);
    expect(badConfig.stderr).to.contain('MSG_LEASE_TTL_SECONDS');

    const nowhere = `http://127.0.0.1:${String(await freePort())}`;
    const started = Date.now();
    const unreachable = await msgctl(['nodes', '--json', '--endpoints', nowhere, '--prefix', cluster.prefix]);
    expect(unreachable.code).to.equal(3);
    expect(unreachable.stdout).to.equal('');
    expect(unreachable.stderr.trim().split('\n')).to.have.length(1);
    expect(Date.now() - started).to.be.below(15_000);
  });
});
