// Issue 22, acceptance 2: a raw v1 client, which reads only `id`, gets one answer per message id, whatever refuses it.
import { readFile } from 'node:fs/promises';
import { expect } from 'chai';
import WebSocket from 'ws';
import type { ServerFrame, Session } from '@messaging-server/protocol';
import { requestSession, startCluster, waitFor, type ClusterNode, type LocalCluster } from '@messaging-server/testkit';

const TOTAL = 10_000;
const PENDING_TTL_MS = 3000;

/** The v1 client: the SockJS raw websocket endpoint with userId and listeningKey, nothing more in its URL. */
function openV1(session: Session): { ws: WebSocket; frames: ServerFrame[] } {
  const url = new URL(`${session.listeningAddress.replace(/^http/, 'ws')}/websocket`);
  url.searchParams.set('userId', session.userId);
  url.searchParams.set('listeningKey', session.listeningKey);
  const ws = new WebSocket(url);
  const frames: ServerFrame[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(String(data)) as ServerFrame));
  ws.on('error', () => undefined);
  return { ws, frames };
}

async function rssMiB(node: ClusterNode): Promise<number> {
  const status = await readFile(`/proc/${String(node.process.pid)}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) / 1024;
}

describe('a v1 client gets one answer per id (issue 22)', function () {
  this.timeout(120_000);
  let cluster: LocalCluster;
  let node: ClusterNode;

  before(async function () {
    this.timeout(60_000);
    // The node's defaults for rates and queues; only the pending window is short, so held messages expire in the test.
    cluster = await startCluster({ nodes: 0 });
    node = await cluster.addNode({ nodeId: 'v1-node', env: { MSG_PENDING_TTL_MS: String(PENDING_TTL_MS) } });
    await cluster.waitForGatewaysToSee(1);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('answers 10,000 ids sent in one burst to a user who never connects: each id exactly once, RSS bounded', async () => {
    const ghost = await requestSession(cluster.gatewayUrl, 'v1-ghost');
    const sender = openV1(await requestSession(cluster.gatewayUrl, 'v1-sender'));
    await waitFor(() => sender.frames[0]?.type === 'welcome', { what: 'welcome' });
    const rssBefore = await rssMiB(node);
    const content = 'v'.repeat(1024);
    const ids = Array.from({ length: TOTAL }, (_, i) => `v1-${String(i)}`);
    const started = Date.now();
    for (const id of ids) sender.ws.send(JSON.stringify({ type: 'message', to: ghost.userId, content, id }));

    const answers = (): (ServerFrame & { id?: string })[] => sender.frames.filter((f) => f.type === 'ack' || f.type === 'error');
    await waitFor(() => answers().length >= TOTAL, { what: `${String(TOTAL)} answers (got ${String(answers().length)})`, timeoutMs: 60_000, intervalMs: 100 });
    const answeredMs = Date.now() - started;
    const rssAfter = await rssMiB(node);
    // Nothing more comes: no id is answered twice.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const all = answers();
    const byCode = new Map<string, number>();
    for (const answer of all) {
      const code = answer.type === 'error' ? answer.code : 'ack';
      byCode.set(code, (byCode.get(code) ?? 0) + 1);
    }
    console.log(
      `      ${String(TOTAL)} ids answered in ${String(answeredMs)} ms: ${JSON.stringify(Object.fromEntries(byCode))}; node VmRSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MiB`,
    );
    expect(all).to.have.length(TOTAL);
    expect(all.map((a) => a.id).sort()).to.deep.equal([...ids].sort());
    expect(all.every((a) => !('ids' in a)), 'no coalesced answer for a client that did not ask for one').to.equal(true);
    expect(byCode.get('RATE_LIMITED') ?? 0, 'the burst is past the rate limit').to.be.greaterThan(0);
    expect(answeredMs, 'answered within the pending window (plus the sweep)').to.be.below(PENDING_TTL_MS + 10_000);
    expect(sender.ws.readyState, 'the connection stays open').to.equal(WebSocket.OPEN);
    // The burst carries 10 MiB of content, and the node holds at most its pending cap of it.
    expect(rssAfter - rssBefore, 'RSS growth (MiB)').to.be.below(64);
    sender.ws.close();
  });
});
