import { expect } from 'chai';
import { startCluster, waitFor, type LocalCluster } from '@messaging-server/testkit';
import {
  MessageLedger,
  TrackedClient,
  closeClients,
  etcdKeys,
  hold,
  httpStatus,
  startClients,
  timedConnect,
} from './support/fault-clients.js';
import { makePairs, startPairTraffic } from './support/pairs.js';

const OUTAGE_MS = 15_000;

/** Issue 5, acceptance 1 and 4: etcd is away for 15 s; connected pairs keep relaying; every process registers again. */
describe('elasticity (v1: MSG_RESUME_WINDOW_MS=0): a 15 s etcd outage', function () {
  this.timeout(90_000);
  let cluster: LocalCluster | undefined;
  const everyone: TrackedClient[] = [];

  before(async function () {
    this.timeout(30_000);
    cluster = await startCluster({ nodes: 2, gateways: 2, env: { MSG_LEASE_TTL_SECONDS: '2', MSG_LOG_LEVEL: 'warn', MSG_RESUME_WINDOW_MS: '0' } });
  });
  after(async () => {
    closeClients(everyone);
    await cluster?.stop();
  });

  it('keeps pairs on one node and across nodes relaying, allocates from the last view, and re-registers everything without restarts', async () => {
    const c = cluster as LocalCluster;
    const ledger = new MessageLedger();
    const run = `etcd-${String(process.pid)}`;
    const gateways = c.gateways.map((g) => g.url);
    const clients = await startClients(gateways, Array.from({ length: 16 }, (_, i) => `${run}-u${String(i)}`), ledger, { limit: 4 });
    everyone.push(...clients);
    const { sameNode, crossNode } = makePairs(clients);
    const pairs = [...sameNode, ...crossNode];
    const processes = [...c.gateways.map((g) => g.process), ...[...c.nodes.values()].map((n) => n.process)];
    const pids = processes.map((p) => p.pid);

    const traffic = await startPairTraffic(ledger, pairs);

    const tOut = Date.now();
    await (c.etcd as NonNullable<LocalCluster['etcd']>).stop();
    const sentBeforeOutage = ledger.size;

    // Gateways: alive, not ready, still allocating from their last view.
    await waitFor(async () => (await Promise.all(gateways.map((g) => httpStatus(`${g}/readyz`)))).every((s) => s === 503), {
      timeoutMs: 10_000,
      what: 'gateways to report not ready',
    });
    const notReadyMs = Date.now() - tOut;
    for (const g of gateways) expect(await httpStatus(`${g}/healthz`), `${g}/healthz`).to.equal(200);
    for (const [i, g] of gateways.entries()) {
      const answer = await timedConnect(g, `${run}-during${String(i)}`);
      expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
      expect(answer.body.nodeId).to.be.oneOf(['node-1', 'node-2']);
    }
    // A user who arrives during the outage connects and talks to one who was there before.
    const late = new TrackedClient(`${run}-late`, gateways[1] as string, ledger.onMessage);
    everyone.push(late);
    await late.start();
    const partner = (crossNode[0] as [TrackedClient, TrackedClient])[0];
    expect((await ledger.send(late, partner.userId)).kind).to.equal('acked');
    expect((await ledger.send(partner, late.userId)).kind).to.equal('acked');

    await hold(Math.max(0, OUTAGE_MS - (Date.now() - tOut)));
    const sentDuringOutage = ledger.size - sentBeforeOutage;
    const tBack = Date.now();
    await (c.etcd as NonNullable<LocalCluster['etcd']>).restart();

    // Every live process is in etcd again, without a restart.
    const nodeKeys = ['nodes/node-1', 'nodes/node-2', 'load/node-1', 'load/node-2'].map((k) => `${c.prefix}${k}`);
    let keys: string[] = [];
    await waitFor(
      async () => {
        keys = await etcdKeys(c.etcdEndpoint, c.prefix);
        const gatewayKeys = keys.filter((k) => k.startsWith(`${c.prefix}gateways/`));
        return nodeKeys.every((k) => keys.includes(k)) && gatewayKeys.length === 2;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'every process to register again' },
    );
    const registeredMs = Date.now() - tBack;
    await waitFor(
      async () => {
        const statuses = await Promise.all([...gateways.map((g) => `${g}/readyz`), ...[...c.nodes.values()].map((n) => `${n.internalUrl}/readyz`)].map((u) => httpStatus(u)));
        return statuses.every((s) => s === 200);
      },
      { timeoutMs: 20_000, what: 'gateways and nodes to be ready again' },
    );
    const readyMs = Date.now() - tBack;
    expect(processes.map((p) => p.pid)).to.deep.equal(pids);
    expect(processes.every((p) => p.running)).to.equal(true);

    // Watches are live again: a node that joins now is seen by every gateway and every node.
    await c.addNode();
    await c.waitForGatewaysToSee(3);
    for (const id of ['node-1', 'node-2']) {
      await waitFor(
        async () => {
          const res = await fetch(`${c.node(id).internalUrl}/readyz`, { signal: AbortSignal.timeout(1000) });
          return ((await res.json()) as { nodes?: number }).nodes === 3;
        },
        { timeoutMs: 5000, what: `${id} to see node-3` },
      );
    }

    await traffic.stop();
    await ledger.settle();
    const report = ledger.report();
    console.log(
      `      etcd outage ${String(OUTAGE_MS)} ms: gateways /readyz 503 after ${String(notReadyMs)} ms; ${String(sentDuringOutage)} messages sent during the outage;` +
        ` all keys back ${String(registeredMs)} ms after etcd restarted (${String(keys.length)} keys); all /readyz 200 after ${String(readyMs)} ms` +
        `\n      etcd messages: ${JSON.stringify(report)}`,
    );

    if (report.errored > 0) {
      const failed = [...ledger.records()].filter((r) => r.outcome.kind === 'error').slice(0, 8);
      const nodeOf = (u: string): string | undefined => everyone.find((x) => x.userId === u)?.nodeId;
      console.log(
        failed.map((r) => ({
          sentVsOutage: r.sentAt - tOut,
          sentVsBack: r.sentAt - tBack,
          answeredAfter: r.outcome.kind === 'error' ? r.outcome.at - r.sentAt : undefined,
          receivedAfter: r.receivedAt === undefined ? undefined : r.receivedAt - r.sentAt,
          route: `${String(nodeOf(r.from))}->${String(nodeOf(r.to))}`,
        })),
        c.logs().split('\n').filter((l) => /relay|outcome|warn|error/i.test(l)).slice(-30).join('\n'),
      );
    }
    expect(sentDuringOutage).to.be.above(500);
    expect(report.errored, `errors: ${JSON.stringify(report.errors)}`).to.equal(0);
    expect(report.silentlyLost, `silently lost: ${JSON.stringify(ledger.suspects())}`).to.equal(0);
    expect(report.outOfOrder, 'out of order').to.equal(0);
    expect(report.duplicates, 'delivered twice').to.equal(0);
    // Nobody had to reconnect.
    expect(everyone.filter((x) => x.welcomes.length !== 1 || x.closes.some((cl) => cl.welcomed)).map((x) => x.userId)).to.deep.equal([]);
  });
});
