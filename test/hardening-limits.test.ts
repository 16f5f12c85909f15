// Issue 8, acceptance 2, 3 and 5: a flood is limited and cut without hurting a neighbour; 10,000 messages for a
// recipient that never connects leave the node's memory bounded; the logs carry no listeningKey.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { expect } from 'chai';
import WebSocket from 'ws';
import { EtcdRegistry } from '@messaging-server/core';
import type { ServerFrame, Session } from '@messaging-server/protocol';
import { requestSession, reservedPort, startCluster, waitFor, type ClusterNode, type LocalCluster } from '@messaging-server/testkit';
import { inspectOptions, retainedMemory, type RetainedMemory } from './support/retained-memory.js';

const FLOOD_RATE = 100; // messages/s per connection on the flood node
const FLOOD_BURST = 200;
const PENDING_MAX = 256;

let counter = 0;
const uid = (label: string): string => `${label}-${String(process.pid)}-${String(++counter)}`;

/** A raw WebSocket client on sockjs's `/websocket` endpoint that stamps each frame with its arrival time. */
class Client {
  readonly frames: { frame: ServerFrame; at: number }[] = [];
  closeCode: number | undefined;
  private readonly ws: WebSocket;
  constructor(readonly session: Session) {
    this.ws = new WebSocket(wsUrl(session));
    this.ws.on('message', (data) => this.frames.push({ frame: JSON.parse(String(data)) as ServerFrame, at: performance.now() }));
    this.ws.on('close', (code) => (this.closeCode = code));
    this.ws.on('error', () => undefined);
  }
  static async open(session: Session): Promise<Client> {
    const client = new Client(session);
    await waitFor(() => client.frames[0]?.frame.type === 'welcome', { what: `${session.userId} welcome`, timeoutMs: 15_000 });
    return client;
  }
  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }
  ofType<K extends ServerFrame['type']>(type: K): Extract<ServerFrame, { type: K }>[] {
    return this.frames.map((f) => f.frame).filter((f): f is Extract<ServerFrame, { type: K }> => f.type === type);
  }
  close(): void {
    this.ws.close();
  }
}

function wsUrl(session: Session): string {
  const url = new URL(`${session.listeningAddress.replace(/^http/, 'ws')}/websocket`);
  url.searchParams.set('userId', session.userId);
  url.searchParams.set('listeningKey', session.listeningKey);
  return url.toString();
}

function p99(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] ?? Number.NaN;
}

/** `from` sends to `to` every 20 ms until stopped; returns each message's send→receive latency in ms. */
function latencyProbe(from: Client, to: Client, label: string) {
  const sentAt = new Map<number, number>();
  let n = 0;
  const timer = setInterval(() => {
    sentAt.set(n, performance.now());
    from.send({ type: 'message', to: to.session.userId, content: { label, n }, id: `${label}-${String(n)}` });
    n += 1;
  }, 20);
  return async (): Promise<number[]> => {
    clearInterval(timer);
    const mine = () => to.frames.filter((f) => f.frame.type === 'message' && (f.frame.content as { label?: string }).label === label);
    await waitFor(() => mine().length >= n, { what: `${label}: ${String(n)} messages`, timeoutMs: 20_000 });
    const got = mine();
    const seqOf = (frame: ServerFrame): number => (frame.type === 'message' ? (frame.content as { n: number }).n : -1);
    expect(got.map((f) => seqOf(f.frame))).to.deep.equal([...Array(n).keys()]);
    await waitFor(() => from.ofType('ack').filter((a) => a.id.startsWith(`${label}-`)).length >= n, { what: `${label} acks`, timeoutMs: 20_000 });
    expect(from.ofType('error')).to.deep.equal([]);
    return got.map((f) => f.at - (sentAt.get(seqOf(f.frame)) as number));
  };
}

/**
 * latencyProbe over several neighbour pairs at once, their sends spread over the 20 ms period: four times the samples
 * of one pair, so a p99 is not decided by the 3rd-slowest of 270 messages (one scheduler hiccup on a shared machine).
 */
async function probePairs(pairs: [Client, Client][], label: string): Promise<() => Promise<number[]>> {
  const stops: (() => Promise<number[]>)[] = [];
  for (const [from, to] of pairs) {
    stops.push(latencyProbe(from, to, label));
    await new Promise((resolve) => setTimeout(resolve, 20 / pairs.length));
  }
  return async () => (await Promise.all(stops.map((stop) => stop()))).flat();
}

/**
 * The flooding client runs in its own process, so its CPU does not distort this process's latency measurements:
 * `perTick` frames every 5 ms until the node closes the connection; prints what it saw as one JSON line.
 */
const FLOOD_SCRIPT = `
import WebSocket from 'ws';
const [url, self, perTick] = process.argv.slice(1);
const ws = new WebSocket(url);
let sent = 0, limited = 0, acks = 0, timer, limitedAt, welcomeAt;
ws.on('message', (data) => {
  const f = JSON.parse(String(data));
  if (f.type === 'welcome') {
    welcomeAt = Date.now();
    timer = setInterval(() => {
      for (let i = 0; i < Number(perTick); i += 1) ws.send(JSON.stringify({ type: 'message', to: self, content: 'f', id: 'f' + sent++ }));
    }, 5);
  } else if (f.type === 'error' && f.code === 'RATE_LIMITED') { limited += 1; limitedAt ??= Date.now(); }
  else if (f.type === 'ack') acks += 1;
});
ws.on('close', (code, reason) => {
  clearInterval(timer);
  console.log(JSON.stringify({ sent, limited, acks, code, reason: String(reason), floodMs: Date.now() - welcomeAt, limitedAfterMs: limitedAt - welcomeAt }));
  process.exit(0);
});
`;

function flood(session: Session, perTick: number): Promise<{ sent: number; limited: number; acks: number; code: number; reason: string; floodMs: number; limitedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    // Niced: on two shared cores the flooding process's own CPU would otherwise delay the node and the probes, which
    // measures the machine, not the node's fairness to its neighbours. It still sends 10× its rate limit.
    const child = spawn('nice', ['-n', '15', process.execPath, '--input-type=module', '-e', FLOOD_SCRIPT, wsUrl(session), session.userId, String(perTick)], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += String(chunk)));
    child.stderr.on('data', (chunk: Buffer) => (err += String(chunk)));
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', () => {
      clearTimeout(guard);
      try {
        resolve(JSON.parse(out.trim()) as Awaited<ReturnType<typeof flood>>);
      } catch {
        reject(new Error(`flood client failed: ${out} ${err}`));
      }
    });
  });
}

async function rssKiB(node: ClusterNode): Promise<number> {
  const status = await readFile(`/proc/${String(node.process.pid)}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error('no VmRSS');
  return Number(match[1]);
}

async function pendingGauge(node: ClusterNode): Promise<number> {
  const text = await (await fetch(`${node.internalUrl}/metrics`)).text();
  const match = /^msg_pending_messages(?:\{[^}]*\})? (\d+)/m.exec(text);
  if (!match) throw new Error('no msg_pending_messages in /metrics');
  return Number(match[1]);
}

describe('hardening: rate limits and bounded pending queues in a cluster of real processes (issue 8, 2, 3 and 5)', function () {
  this.timeout(180_000);
  let cluster: LocalCluster;
  let floodNode: ClusterNode;
  let pendingNode: ClusterNode;
  let pendingInspectPort: number;
  const keys: string[] = [];
  const clients: Client[] = [];

  /** A session on `node` (the gateway avoids the other one). */
  async function sessionOn(node: ClusterNode, label: string): Promise<Session> {
    const other = node === floodNode ? pendingNode : floodNode;
    const session = await requestSession(cluster.gatewayUrl, uid(label), { avoid: [other.nodeId] });
    expect(session.nodeId).to.equal(node.nodeId);
    keys.push(session.listeningKey);
    return session;
  }
  async function online(node: ClusterNode, label: string): Promise<Client> {
    const client = await Client.open(await sessionOn(node, label));
    clients.push(client);
    return client;
  }

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 0, env: { MSG_CLUSTER_SECRET: 'limits-cluster-secret', MSG_LEASE_TTL_SECONDS: '3' } });
    pendingInspectPort = await reservedPort();
    [floodNode, pendingNode] = await Promise.all([
      cluster.addNode({
        nodeId: 'flood-node',
        env: { MSG_RATE_MESSAGES_PER_SECOND: String(FLOOD_RATE), MSG_RATE_BURST: String(FLOOD_BURST) },
      }),
      cluster.addNode({
        nodeId: 'pending-node',
        env: {
          MSG_PENDING_MAX: String(PENDING_MAX),
          // This test is about the count cap: 256 of these 16 KiB messages are 4 MiB, past the default byte caps.
          MSG_PENDING_MAX_BYTES_PER_RECIPIENT: String(16 << 20),
          MSG_PENDING_MAX_BYTES_PER_SENDER: String(16 << 20),
          MSG_PENDING_TTL_MS: '120000',
          MSG_RATE_MESSAGES_PER_SECOND: '100000',
          MSG_RATE_BURST: '100000',
          MSG_RATE_BYTES_PER_SECOND: String(1 << 30),
          MSG_RATE_BYTES_BURST: String(1 << 30),
          NODE_OPTIONS: inspectOptions(pendingInspectPort),
        },
      }),
    ]);
    await cluster.waitForGatewaysToSee(2);
  });
  after(async () => {
    for (const client of clients) client.close();
    await cluster?.stop();
  });

  it('answers a flood with RATE_LIMITED, then closes it with 4504; a neighbour on the node keeps its p99 within 2×', async () => {
    const neighbours: [Client, Client][] = [];
    for (let i = 0; i < 4; i += 1) neighbours.push([await online(floodNode, `neighbour-a${String(i)}`), await online(floodNode, `neighbour-b${String(i)}`)]);
    const flooder = await sessionOn(floodNode, 'flooder');
    // Warm up every path (JIT, connections to memcached) before measuring.
    const warmup = await probePairs(neighbours, 'warmup');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await warmup();

    const before = await probePairs(neighbours, 'unloaded-1');
    await new Promise((resolve) => setTimeout(resolve, 6000));
    const unloadedBefore = await before();

    const loadedProbe = await probePairs(neighbours, 'flooded');
    // 5 frames every 5 ms: about 1,000 frames/s, 10× the connection's rate.
    const result = await flood(flooder, 5);
    const loaded = await loadedProbe();

    const after = await probePairs(neighbours, 'unloaded-2');
    await new Promise((resolve) => setTimeout(resolve, 6000));
    const unloadedAfter = await after();

    // The unloaded figure is taken on both sides of the flood, so ambient noise on a shared box counts on both sides.
    const unloadedP99 = Math.max(p99(unloadedBefore), p99(unloadedAfter));
    const loadedP99 = p99(loaded);
    console.log(
      `      flood: ${String(result.sent)} frames in ${String(result.floodMs)} ms (${String(Math.round((result.sent / result.floodMs) * 1000))}/s against ${String(FLOOD_RATE)}/s), ` +
        `${String(result.acks)} accepted, ${String(result.limited)} RATE_LIMITED (first after ${String(result.limitedAfterMs)} ms), closed ${String(result.code)} ${result.reason}`,
    );
    console.log(
      `      neighbour p99: unloaded ${p99(unloadedBefore).toFixed(2)} / ${p99(unloadedAfter).toFixed(2)} ms (${String(unloadedBefore.length)}+${String(unloadedAfter.length)} samples), ` +
        `during flood ${loadedP99.toFixed(2)} ms (${String(loaded.length)} samples), ratio ${(loadedP99 / unloadedP99).toFixed(2)}`,
    );
    expect(result.limited).to.be.greaterThan(0);
    expect(result.code).to.equal(4504);
    expect(result.reason).to.equal('protocol_violation');
    // The contract: closed after 5 s of RATE_LIMITED, not before and not much later: the node judges every frame,
    // and this client sends one per millisecond (measured: 5,006 ms; the margins are delivery jitter either way).
    expect(result.floodMs - result.limitedAfterMs, 'first RATE_LIMITED → close 4504 (ms)').to.be.within(4500, 5500);
    expect(loaded.length).to.be.greaterThan(400);
    expect(loadedP99).to.be.at.most(2 * unloadedP99);
    expect(neighbours.flat().map((c) => c.closeCode)).to.deep.equal(Array.from({ length: 8 }, () => undefined));
  });

  it('holds at most MSG_PENDING_MAX of 10,000 messages for a recipient that never connects; memory stays bounded', async () => {
    const ghost = await sessionOn(pendingNode, 'ghost');
    const sender = await online(pendingNode, 'sender');
    const content = 'p'.repeat(16 * 1024);
    const total = 10_000;
    await waitFor(async () => (await pendingGauge(pendingNode)) === 0, { what: 'empty pending gauge' });
    const sendBatch = async (prefix: string, expectedErrors: number): Promise<void> => {
      for (let i = 0; i < total; i += 1) {
        sender.send({ type: 'message', to: ghost.userId, content, id: `${prefix}${String(i)}` });
        // Let the socket drain now and then, so the test process does not buffer 160 MB itself.
        if (i % 500 === 499) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await waitFor(() => sender.ofType('error').length >= expectedErrors, { what: 'QUEUE_FULL answers', timeoutMs: 60_000 });
    };
    const rssBefore = await rssKiB(pendingNode);
    const keptBefore = await retainedMemory(pendingInspectPort);
    await sendBatch('m', total - PENDING_MAX);
    const errors = sender.ofType('error');
    expect(new Set(errors.map((e) => e.code))).to.deep.equal(new Set(['QUEUE_FULL']));
    expect(errors.map((e) => e.id)).to.deep.equal(Array.from({ length: total - PENDING_MAX }, (_, i) => `m${String(i + PENDING_MAX)}`));
    expect(sender.ofType('ack')).to.have.length(0);

    const gauge = await pendingGauge(pendingNode);
    const rssAfter = await rssKiB(pendingNode);
    const keptAfter = await retainedMemory(pendingInspectPort);
    // A second 10,000: the first batch sized the heap for the traffic; what is held must not grow with it.
    await sendBatch('n', 2 * total - PENDING_MAX);
    expect(sender.ofType('error').filter((e) => e.code === 'QUEUE_FULL')).to.have.length(2 * total - PENDING_MAX);
    const rssAfterSecond = await rssKiB(pendingNode);
    const keptAfterSecond = await retainedMemory(pendingInspectPort);
    const registry = new EtcdRegistry({ endpoints: [cluster.etcdEndpoint], prefix: cluster.prefix, leaseTtlSeconds: 3 });
    let loadPending: number | undefined;
    try {
      await waitFor(
        async () => {
          loadPending = (await registry.list()).loads.get(pendingNode.nodeId)?.pending;
          return loadPending === PENDING_MAX;
        },
        { what: 'load/ pending', timeoutMs: 10_000 },
      );
    } finally {
      await registry.close();
    }
    const mib = (kib: number): string => String(Math.round(kib / 1024));
    const kept = (m: RetainedMemory): number => m.heapUsedKiB + m.externalKiB;
    const contentKiB = (total * content.length) / 1024;
    console.log(
      `      pending: gauge ${String(gauge)}, load/ ${String(loadPending)} (cap ${String(PENDING_MAX)}); node kept after a full GC ` +
        `${mib(kept(keptBefore))} MiB → ${mib(kept(keptAfter))} MiB after 10,000 → ${mib(kept(keptAfterSecond))} MiB after 20,000, ` +
        `VmRSS ${mib(rssBefore)} → ${mib(rssAfter)} → ${mib(rssAfterSecond)} MiB (each 10,000 carry ${mib(contentKiB)} MiB of content)`,
    );
    expect(gauge).to.equal(PENDING_MAX);
    // What may be held is PENDING_MAX messages (4 MiB; the gauge above says exactly that many are). What the node
    // keeps is read after a forced full collection: RSS would also count the garbage of parsing 156 MiB of frames,
    // which V8 collects when it chooses (RSS grew 39-121 MiB over the first batch depending on the machine's load).
    // Holding a tenth of a batch's messages would add 16 MiB; the 256 held ones are 4 MiB.
    const heldKiB = (PENDING_MAX * content.length) / 1024;
    expect(kept(keptAfter) - kept(keptBefore), 'kept over the first 10,000 (KiB)').to.be.below(heldKiB + contentKiB / 10);
    expect(kept(keptAfterSecond) - kept(keptAfter), 'kept over the second 10,000 (KiB)').to.be.below(contentKiB / 10);

    // The held ones are intact: the recipient gets exactly the first 256, in order, and the sender their acks.
    const late = await Client.open(ghost);
    clients.push(late);
    await waitFor(() => late.ofType('message').length >= PENDING_MAX, { what: 'held messages', timeoutMs: 20_000 });
    expect(late.ofType('message').map((m) => m.id)).to.deep.equal(Array.from({ length: PENDING_MAX }, (_, i) => `m${String(i)}`));
    await waitFor(() => sender.ofType('ack').length === PENDING_MAX, { what: 'acks for held messages' });
    expect(await pendingGauge(pendingNode)).to.equal(0);
  });

  it('leaves every process running, and logs no listeningKey', async () => {
    for (const node of cluster.nodes.values()) {
      expect(node.process.running, node.nodeId).to.equal(true);
      expect((await fetch(`${node.internalUrl}/healthz`)).status).to.equal(200);
    }
    const logs = cluster.logs();
    expect(keys.length).to.be.greaterThan(4);
    expect(keys.filter((key) => logs.includes(key))).to.deep.equal([]);
  });
});
