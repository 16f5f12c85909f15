// Issue 13, acceptance 4: a client that reads nothing while it is flooded at the rate limit costs its node less than
// 64 MiB, is closed (4005 slow_consumer), and its neighbours lose nothing. Real node process; the flooders run in a
// process of their own so their CPU does not distort this one.
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { expect } from 'chai';
import WebSocket from 'ws';
import type { ServerFrame, Session } from '@messaging-server/protocol';
import { requestSession, startCluster, waitFor, type ClusterNode, type LocalCluster } from '@messaging-server/testkit';
import { residentKiB } from './support/proc.js';

const FLOODERS = 8;
const FLOOD_MS = 10_000;

let counter = 0;
const uid = (label: string): string => `${label}-${String(process.pid)}-${String(++counter)}`;

function wsUrl(session: Session): string {
  const url = new URL(`${session.listeningAddress.replace(/^http/, 'ws')}/websocket`);
  url.searchParams.set('userId', session.userId);
  url.searchParams.set('listeningKey', session.listeningKey);
  return url.toString();
}

class User {
  readonly frames: ServerFrame[] = [];
  readonly ws: WebSocket;
  close: { code: number; reason: string } | undefined;
  constructor(readonly session: Session) {
    this.ws = new WebSocket(wsUrl(session));
    this.ws.on('message', (data) => this.frames.push(JSON.parse(String(data)) as ServerFrame));
    this.ws.on('close', (code, reason) => (this.close = { code, reason: String(reason) }));
    this.ws.on('error', () => undefined);
  }
  async welcomed(): Promise<this> {
    await waitFor(() => this.frames[0]?.type === 'welcome', { what: `${this.session.userId} welcome` });
    return this;
  }
  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }
  /** The TCP socket under the WebSocket: pausing it stops reading, as a stalled client would. */
  get socket(): Socket {
    return (this.ws as unknown as { _socket: Socket })._socket;
  }
}

/** Each flooder sends one 1 KiB message per ms to `target` (its message and byte rates, 1000/s and 1 MiB/s). */
const FLOOD_SCRIPT = `
import WebSocket from 'ws';
const [urls, target, ms] = [JSON.parse(process.argv[1]), process.argv[2], Number(process.argv[3])];
const content = 'f'.repeat(1000);
const counts = {};
let open = 0, sent = 0;
for (const url of urls) {
  const ws = new WebSocket(url);
  ws.on('message', (data) => {
    const f = JSON.parse(String(data));
    counts[f.type === 'error' ? f.code : f.type] = (counts[f.type === 'error' ? f.code : f.type] ?? 0) + 1;
    if (f.type !== 'welcome') return;
    open += 1;
    const started = Date.now();
    const timer = setInterval(() => {
      if (Date.now() - started > ms) { clearInterval(timer); return setTimeout(() => ws.close(), 1000); }
      for (let i = 0; i < 10; i += 1) ws.send(JSON.stringify({ type: 'message', to: target, content, id: 'f' + sent++ }));
    }, 10);
  });
  ws.on('close', () => { open -= 1; if (open <= 0) { console.log(JSON.stringify({ sent, counts })); process.exit(0); } });
  ws.on('error', () => undefined);
}
`;

function flood(sessions: Session[], target: string): Promise<{ sent: number; counts: Record<string, number> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', FLOOD_SCRIPT, JSON.stringify(sessions.map(wsUrl)), target, String(FLOOD_MS)], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += String(chunk)));
    const guard = setTimeout(() => child.kill('SIGKILL'), FLOOD_MS + 30_000);
    child.on('exit', () => {
      clearTimeout(guard);
      try {
        resolve(JSON.parse(out.trim()) as { sent: number; counts: Record<string, number> });
      } catch {
        reject(new Error(`flooders failed: ${out}`));
      }
    });
  });
}

describe('hardening: a client that does not read is closed before it pins node memory (issue 13, 4)', function () {
  this.timeout(120_000);
  let cluster: LocalCluster;
  let node: ClusterNode;
  const users: User[] = [];

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 1, env: { MSG_CLUSTER_SECRET: 'backpressure-secret' } });
    node = [...cluster.nodes.values()][0] as ClusterNode;
  });
  after(async () => {
    for (const user of users) user.ws.close();
    await cluster?.stop();
  });

  async function online(label: string): Promise<User> {
    const user = new User(await requestSession(cluster.gatewayUrl, uid(label)));
    users.push(user);
    return user.welcomed();
  }

  it('closes it with 4005 slow_consumer; node RSS grows by less than 64 MiB; neighbours lose nothing', async () => {
    const pid = node.process.pid as number;
    const a = await online('neighbour-a');
    const b = await online('neighbour-b');
    const stalled = await online('stalled');
    const flooders = await Promise.all(Array.from({ length: FLOODERS }, (_, i) => requestSession(cluster.gatewayUrl, uid(`flooder${String(i)}`))));
    const rssBefore = await residentKiB(pid);
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      void residentKiB(pid).then((kib) => (rssPeak = Math.max(rssPeak, kib)));
    }, 200);

    stalled.socket.pause();
    // It floods itself too, and never reads the answers.
    let own = 0;
    const selfFlood = setInterval(() => {
      for (let i = 0; i < 10 && !stalled.close; i += 1) stalled.send({ type: 'message', to: stalled.session.userId, content: 's'.repeat(1000), id: `s${String(own++)}` });
    }, 10);
    let n = 0;
    const pair = setInterval(() => {
      a.send({ type: 'message', to: b.session.userId, content: { n }, id: `a${String(n)}` });
      b.send({ type: 'message', to: a.session.userId, content: { n }, id: `b${String(n)}` });
      n += 1;
    }, 20);
    const flooding = flood(flooders, stalled.session.userId);
    const closedAt = performance.now();
    const slowClosed = async (): Promise<boolean> => /msg_connections_closed_total\{reason="slow_consumer"[^}]*\} 1\b/.test(await (await fetch(`${node.internalUrl}/metrics`)).text());
    const closedByNode = await waitFor(slowClosed, { what: 'the node to close the stalled client', timeoutMs: FLOOD_MS, intervalMs: 100 }).then(
      () => true,
      () => false,
    );
    const closedAfter = performance.now() - closedAt;
    // It starts reading again within the 5 s grace: what was queued, then the close frame.
    stalled.socket.resume();
    const result = await flooding;
    clearInterval(selfFlood);
    clearInterval(pair);
    clearInterval(sampler);
    const grownMiB = (rssPeak - rssBefore) / 1024;
    console.log(`      node RSS +${grownMiB.toFixed(1)} MiB at its peak; closed by the node: ${String(closedByNode)}`);
    expect(grownMiB).to.be.below(64);
    expect(closedByNode).to.equal(true);
    await waitFor(() => stalled.close, { what: 'the stalled client closed' });
    for (const [sender, receiver, prefix] of [
      [a, b, 'a'],
      [b, a, 'b'],
    ] as const) {
      await waitFor(() => sender.frames.filter((f) => f.type === 'ack').length >= n, { what: `${prefix} acks`, timeoutMs: 20_000 });
      expect(sender.frames.filter((f) => f.type === 'error'), prefix).to.deep.equal([]);
      const got = receiver.frames.filter((f) => f.type === 'message').map((f) => (f.type === 'message' ? (f.content as { n: number }).n : -1));
      expect(got, prefix).to.deep.equal([...Array(n).keys()]);
      expect(receiver.close, prefix).to.equal(undefined);
    }
    console.log(
      `      ${String(FLOODERS)} flooders sent ${String(result.sent)} × 1 KiB to a client that read nothing (${JSON.stringify(result.counts)}); ` +
        `closed after ${(closedAfter / 1000).toFixed(1)} s with ${String(stalled.close?.code)} ${String(stalled.close?.reason)}; neighbours exchanged ${String(n)}×2`,
    );
    expect(stalled.close).to.deep.equal({ code: 4005, reason: 'slow_consumer' });
    expect(node.process.running).to.equal(true);
  });
});
