// Issue 28, bounded internal port: the node's internal port holds a client to the public port's header, request and
// keep-alive bounds, and a refused request (no secret, body too large) is answered and its connection closed at once,
// its body never read. Before, the internal port ran on Node's defaults: unfinished headers held 72 s, an
// unauthenticated endless body past 125 s. Real node process, raw sockets.
import { expect } from 'chai';
import { startCluster, type ClusterNode, type LocalCluster } from '@messaging-server/testkit';
import { bytesRead } from './support/proc.js';
import { untilClosed } from './support/raw-http.js';

const SECRET = 'internal-port-secret-0123456789abcdef';
const MiB = 1 << 20;

function chunkedPost(path: string, secret?: string): string {
  const auth = secret === undefined ? '' : `x-cluster-secret: ${secret}\r\n`;
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${auth}Transfer-Encoding: chunked\r\n\r\n`;
}

describe('hardening: the internal port is bounded like the public port (issue 28)', function () {
  this.timeout(120_000);
  let cluster: LocalCluster;
  let node: ClusterNode;
  let pid: number;

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 1, gateways: 0, env: { MSG_CLUSTER_SECRET: SECRET } });
    node = [...cluster.nodes.values()][0] as ClusterNode;
    pid = node.process.pid as number;
  });
  after(async () => {
    await cluster?.stop();
  });

  it('answers an endless body without the secret with 401 and closes the connection at once, reading almost none of it', async () => {
    for (const path of ['/internal/v1/deliver', '/internal/v1/replace', '/internal/nope']) {
      const before = await bytesRead(pid);
      const closed = await untilClosed(node.internalPort, chunkedPost(path), { endlessBody: true, deadlineMs: 5000 });
      const readKiB = ((await bytesRead(pid)) - before) / 1024;
      console.log(`      ${path} without secret: status ${String(closed.status ?? 'cut')}, closed after ${closed.closedMs.toFixed(0)} ms, node read ${readKiB.toFixed(0)} KiB of ${(closed.bodyBytes / MiB).toFixed(1)} MiB sent`);
      expect(closed.timedOut, `${path} still open after 5 s`).to.equal(false);
      expect(closed.status === 401 || closed.status === undefined, String(closed.status)).to.equal(true);
      expect(closed.closedMs).to.be.below(1000);
      expect(readKiB).to.be.below(1024);
    }
  });

  // Authenticated bodies go to replace: since node identity (issue 28) the cluster secret opens only the gateway's and
  // msgctl's routes, and every route shares one body cap.
  it('cuts an endless body with the secret once it passes the body cap (413), connection closed', async () => {
    const before = await bytesRead(pid);
    const closed = await untilClosed(node.internalPort, chunkedPost('/internal/v1/replace', SECRET), { endlessBody: true, deadlineMs: 10_000 });
    const readMiB = ((await bytesRead(pid)) - before) / MiB;
    console.log(`      endless body with secret: status ${String(closed.status ?? 'cut')}, closed after ${closed.closedMs.toFixed(0)} ms, node read ${readMiB.toFixed(1)} MiB`);
    expect(closed.timedOut).to.equal(false);
    expect(closed.status === 413 || closed.status === undefined, String(closed.status)).to.equal(true);
    // The cap is 8 MiB (a full delivery batch); a few socket buffers more may be in flight when it is passed.
    expect(readMiB).to.be.below(10);
  });

  it('refuses a body announced over the cap before reading it, and upgrades at once', async () => {
    const head = `POST /internal/v1/replace HTTP/1.1\r\nHost: 127.0.0.1\r\nx-cluster-secret: ${SECRET}\r\nContent-Length: ${String(64 * MiB)}\r\n\r\n`;
    const big = await untilClosed(node.internalPort, head, { deadlineMs: 5000 });
    expect(big.status).to.equal(413);
    expect(big.closedMs).to.be.below(1000);
    const upgrade = await untilClosed(
      node.internalPort,
      'GET /internal/v1/deliver HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      { deadlineMs: 5000 },
    );
    expect(upgrade.status).to.equal(404);
    expect(upgrade.closedMs).to.be.below(1500);
  });

  it('cuts unfinished headers at 10 s, a stalled body at 30 s and an idle keep-alive connection at 5 s, as the public port does', async () => {
    const [headers, body, idle] = await Promise.all([
      untilClosed(node.internalPort, 'POST /internal/v1/deliver HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ', { deadlineMs: 45_000 }),
      untilClosed(node.internalPort, chunkedPost('/internal/v1/replace', SECRET), { deadlineMs: 45_000 }),
      untilClosed(node.internalPort, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', { deadlineMs: 45_000 }),
    ]);
    const idleMs = idle.closedMs - (idle.answeredMs ?? 0);
    console.log(
      `      unfinished headers closed after ${(headers.closedMs / 1000).toFixed(1)} s, stalled body after ${(body.closedMs / 1000).toFixed(1)} s, ` +
        `idle keep-alive ${(idleMs / 1000).toFixed(1)} s after its answer (status ${String(idle.status)})`,
    );
    expect(headers.timedOut, 'headers').to.equal(false);
    expect(headers.closedMs / 1000).to.be.within(9.5, 11.5);
    expect(body.timedOut, 'body').to.equal(false);
    expect(body.closedMs / 1000).to.be.within(29.5, 31.5);
    expect(idle.status).to.equal(200);
    expect(idle.timedOut, 'keep-alive').to.equal(false);
    // node closes an idle keep-alive socket 1 s after the timeout it announces, so clients never race it.
    expect(idleMs / 1000).to.be.within(4.5, 7);
  });

  it('still serves its own: health, and a replace request with the secret', async () => {
    expect(node.process.running).to.equal(true);
    expect((await fetch(`${node.internalUrl}/healthz`)).status).to.equal(200);
    const res = await fetch(`${node.internalUrl}/internal/v1/replace`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-cluster-secret': SECRET },
      body: '{}',
    });
    expect(res.status).to.equal(400);
  });
});
