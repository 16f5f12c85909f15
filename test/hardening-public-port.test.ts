// Issue 13, acceptance 1 and 2: the node's public port answers or closes every upgrade it does not serve at once,
// refuses oversized bodies on every fallback endpoint after reading about 1 MiB, and cuts stalled headers on time,
// while a neighbour pair on the same node keeps its round trips short. Real node process, raw sockets.
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { expect } from 'chai';
import type { ServerFrame, Session } from '@messaging-server/protocol';
import { requestSession, startCluster, waitFor, type ClusterNode, type LocalCluster } from '@messaging-server/testkit';
import { RawUser } from './support/raw-user.js';
import { bytesRead, openDescriptors } from './support/proc.js';

const MiB = 1 << 20;
const HUGE = 24 * MiB;

let counter = 0;
const uid = (label: string): string => `${label}-${String(process.pid)}-${String(++counter)}`;

interface RawAnswer {
  /** The status line's code, when an answer arrived before the connection ended. */
  status: number | undefined;
  /** From the first byte sent to the first answer byte or the end of the connection, whichever came first. */
  settledMs: number;
  /** Until the connection was closed by either side (or the timeout). */
  closedMs: number;
  timedOut: boolean;
}

/**
 * One request on a raw TCP connection: `head` as given, then optionally `body.total` bytes (with Content-Length, or
 * chunked), written as fast as the socket takes them until the server answers or hangs up.
 */
function rawExchange(port: number, head: string, body?: { total: number; chunked: boolean }, timeoutMs = 5000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket: Socket = connect(port, '127.0.0.1');
    let received = '';
    let settledMs: number | undefined;
    let sent = 0;
    let done = false;
    const settle = (): void => {
      settledMs ??= performance.now() - started;
    };
    const finish = (timedOut: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      settle();
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(received);
      socket.destroy();
      resolve({ status: match ? Number(match[1]) : undefined, settledMs: settledMs as number, closedMs: performance.now() - started, timedOut });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const pump = (): void => {
      while (body && !done && received === '' && sent < body.total && !socket.destroyed) {
        const size = Math.min(chunk.length, body.total - sent);
        const piece = body.chunked ? Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), chunk.subarray(0, size), Buffer.from('\r\n')]) : chunk.subarray(0, size);
        sent += size;
        const more = socket.write(piece);
        if (sent >= body.total && body.chunked) socket.write('0\r\n\r\n');
        if (!more) return;
      }
    };
    socket.on('connect', () => {
      socket.write(head);
      pump();
    });
    socket.on('drain', pump);
    socket.on('data', (data: Buffer) => {
      received += data.toString('latin1');
      settle();
      // An answer to an upgrade or a refused body is complete once its head is; a body-less error answer closes.
      if (/\r\n\r\n/.test(received) && (body === undefined || received.length > 0)) finish(false);
    });
    socket.on('end', () => finish(false));
    socket.on('close', () => finish(false));
    socket.on('error', () => finish(false));
  });
}

function upgradeHead(target: string): string {
  return (
    `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`
  );
}

function bodyHead(method: string, target: string, length: number | 'chunked', contentType = 'text/plain'): string {
  const framing = length === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${String(length)}`;
  return `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${contentType}\r\n${framing}\r\n\r\n`;
}

/**
 * `a` sends to `b` every 20 ms and `b` echoes each message back: the round trip a client of this node sees.
 * `stop()` returns every round trip in ms and checks that none was lost.
 */
function roundTrips(a: RawUser, b: RawUser): { count(): number; stop(): Promise<number[]> } {
  const sentAt = new Map<number, number>();
  const rtts: number[] = [];
  b.ws.on('message', (data) => {
    const frame = JSON.parse(String(data)) as ServerFrame;
    if (frame.type === 'message') b.send({ type: 'message', to: a.session.userId, content: { echo: (frame.content as { n: number }).n } });
  });
  a.ws.on('message', (data) => {
    const frame = JSON.parse(String(data)) as ServerFrame;
    if (frame.type !== 'message') return;
    const n = (frame.content as { echo: number }).echo;
    rtts.push(performance.now() - (sentAt.get(n) as number));
  });
  let n = 0;
  const timer = setInterval(() => {
    sentAt.set(n, performance.now());
    a.send({ type: 'message', to: b.session.userId, content: { n }, id: `rt${String(n)}` });
    n += 1;
  }, 20);
  return {
    count: () => rtts.length,
    stop: async (): Promise<number[]> => {
      clearInterval(timer);
      await waitFor(() => rtts.length >= n, { what: `${String(n)} round trips`, timeoutMs: 10_000 });
      expect(a.frames.filter((f) => f.type === 'error')).to.deep.equal([]);
      return rtts;
    },
  };
}

/** Keeps an xhr-polling SockJS session open (one long poll at a time) until stopped. */
function xhrSession(node: ClusterNode, session: Session): { path: string; stop(): void } {
  const path = `/ws/000/${uid('xs').replace(/[^a-z0-9]/gi, '')}`;
  const query = `?userId=${encodeURIComponent(session.userId)}&listeningKey=${encodeURIComponent(session.listeningKey)}`;
  let stopped = false;
  const poll = async (): Promise<void> => {
    while (!stopped) {
      await fetch(`http://127.0.0.1:${String(node.port)}${path}/xhr${query}`, { method: 'POST', signal: AbortSignal.timeout(30_000) })
        .then((res) => res.text())
        .catch(() => undefined);
    }
  };
  void poll();
  return {
    path,
    stop: () => {
      stopped = true;
    },
  };
}

describe('hardening: the public port bounds every request in time and bytes (issue 13, 1 and 2)', function () {
  this.timeout(180_000);
  let cluster: LocalCluster;
  let node: ClusterNode;
  let pid: number;
  const users: RawUser[] = [];

  async function online(label: string): Promise<RawUser> {
    const user = new RawUser(await requestSession(cluster.gatewayUrl, uid(label)));
    users.push(user);
    await user.welcomed();
    return user;
  }

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 1, env: { MSG_CLUSTER_SECRET: 'public-port-secret' } });
    node = [...cluster.nodes.values()][0] as ClusterNode;
    pid = node.process.pid as number;
  });
  after(async () => {
    for (const user of users) user.ws.close();
    await cluster?.stop();
  });

  it('answers or closes 200 upgrades to paths it does not serve within 1 s each; descriptors return to baseline', async () => {
    const baseline = await openDescriptors(pid);
    const targets = [
      '/nope',
      '/',
      '/wsx/websocket',
      '/ws/info',
      '/ws/000/abc/xhr_streaming',
      '/ws/a/b/c/websocket',
      '/internal/v1/deliver',
      'http://127.0.0.1/ws/websocket',
      'http://127.0.0.1/ws/000/abc/websocket',
      '*',
    ];
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => rawExchange(node.port, upgradeHead(targets[i % targets.length] as string))));
    const slowest = Math.max(...answers.map((a) => a.settledMs));
    const statuses = new Map<string, number>();
    for (const a of answers) statuses.set(String(a.status ?? 'closed'), (statuses.get(String(a.status ?? 'closed')) ?? 0) + 1);
    console.log(`      200 upgrades: slowest answer or close after ${slowest.toFixed(0)} ms; answers ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(answers.filter((a) => a.timedOut)).to.have.length(0);
    expect(slowest).to.be.below(1000);
    for (const a of answers) expect(a.status === undefined || (a.status >= 400 && a.status < 500), String(a.status)).to.equal(true);
    const after = await waitFor(async () => {
      const now = await openDescriptors(pid);
      return now <= baseline ? now : undefined;
    }, { what: `descriptors back to ${String(baseline)}`, timeoutMs: 5000 });
    console.log(`      descriptors: ${String(baseline)} before, ${String(after)} after`);
  });

  it('refuses 24 MiB bodies on every fallback endpoint, with and without a session, after reading at most about 1 MiB', async () => {
    const a = await online('neighbour-a');
    const b = await online('neighbour-b');
    const neighbours = roundTrips(a, b);
    const owner = await requestSession(cluster.gatewayUrl, uid('xhr-owner'));
    const live = xhrSession(node, owner);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const results: { target: string; framing: string; status: number | undefined; readKiB: number; ms: number }[] = [];
    try {
      const sessionPaths = [live.path, '/ws/000/nosuchsession'];
      const perSession = ['xhr_send', 'xhr', 'xhr_streaming', 'jsonp_send?c=cb', 'eventsource', 'htmlfile?c=cb', 'jsonp?c=cb', 'websocket'];
      const targets: [string, string][] = [
        ['POST', '/ws/chunking_test'],
        ['GET', '/ws/info'],
        ['OPTIONS', '/ws/info'],
        ['GET', '/ws/iframe.html'],
        ['GET', '/ws'],
        ['GET', '/ws/websocket'],
        ...sessionPaths.flatMap((base) => perSession.map((t): [string, string] => [t.startsWith('xhr') || t.startsWith('jsonp_send') ? 'POST' : 'GET', `${base}/${t}`])),
      ];
      // Sweeps again until the neighbours' round trips have run through enough of it to say something: a fast machine
      // gets through one sweep in less time than 20 round trips take.
      do {
        for (const [method, target] of targets) {
          for (const chunked of [false, true]) {
            const contentType = target.includes('jsonp_send') ? 'application/x-www-form-urlencoded' : 'text/plain';
            const before = await bytesRead(pid);
            const answer = await rawExchange(node.port, bodyHead(method, target, chunked ? 'chunked' : HUGE, contentType), { total: HUGE, chunked }, 15_000);
            const read = (await bytesRead(pid)) - before;
            results.push({ target: `${method} ${target}`, framing: chunked ? 'chunked' : 'length', status: answer.status, readKiB: Math.round(read / 1024), ms: Math.round(answer.closedMs) });
          }
        }
      } while (neighbours.count() <= 20);
    } finally {
      live.stop();
    }
    const rtts = await neighbours.stop();
    const worst = Math.max(...rtts);
    const mostRead = Math.max(...results.map((r) => r.readKiB));
    console.log(`      ${String(results.length)} requests of 24 MiB: statuses ${JSON.stringify([...new Set(results.map((r) => r.status ?? 'cut'))])}, most read by the node ${String(mostRead)} KiB, slowest ${String(Math.max(...results.map((r) => r.ms)))} ms`);
    console.log(`      neighbour round trips meanwhile: ${String(rtts.length)}, worst ${worst.toFixed(1)} ms`);
    for (const r of results) {
      expect(r.status === 413 || r.status === undefined, `${r.target} (${r.framing}) answered ${String(r.status)}`).to.equal(true);
      expect(r.readKiB, `${r.target} (${r.framing}) read`).to.be.below(1200);
    }
    expect(rtts.length).to.be.greaterThan(20);
    expect(worst).to.be.below(100);
  });

  it('cuts stalled headers after the 10 s header timeout and a stalled body after the request timeout, not later (node and gateway)', async () => {
    const gatewayPort = Number(new URL(cluster.gatewayUrl).port);
    const stalledHeaders = 'GET /ws/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ';
    // Complete headers announcing a chunked body, then not one chunk.
    const cases = [
      { name: 'node, headers', port: node.port, head: stalledHeaders, seconds: 10 },
      { name: 'gateway, headers', port: gatewayPort, head: stalledHeaders, seconds: 10 },
      { name: 'node, body', port: node.port, head: bodyHead('POST', '/ws/000/stalled/xhr_send', 'chunked'), seconds: 30 },
      { name: 'gateway, body', port: gatewayPort, head: bodyHead('POST', '/connect', 'chunked', 'application/json'), seconds: 15 },
    ];
    const answers = await Promise.all(cases.map((c) => rawExchange(c.port, c.head, undefined, 45_000)));
    cases.forEach((c, i) => {
      const answer = answers[i] as RawAnswer;
      console.log(`      ${c.name}: stalled, closed after ${(answer.closedMs / 1000).toFixed(1)} s (status ${String(answer.status ?? 'none')})`);
      expect(answer.timedOut, c.name).to.equal(false);
      expect(answer.closedMs / 1000, c.name).to.be.within(c.seconds - 0.5, c.seconds + 1.5);
    });
  });

  it('leaves the node running and healthy', async () => {
    expect(node.process.running).to.equal(true);
    expect((await fetch(`${node.internalUrl}/healthz`)).status).to.equal(200);
  });
});
