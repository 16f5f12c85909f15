import { expect } from 'chai';
import { percentile } from '@messaging-server/harness/stats';
import { connectUser, startCluster, waitFor, type LocalCluster, type TestSocket } from '@messaging-server/testkit';
import {
  MessageLedger,
  closeClients,
  etcdKeys,
  every,
  startClients,
  timedConnect,
  type TrackedClient,
} from './support/fault-clients.js';

const LEASE_TTL_SECONDS = 2;
const VICTIMS = 200;
const OBSERVERS = 20;
const GHOSTS = 10;

async function gatewayActiveNodes(gatewayUrl: string): Promise<number> {
  const text = await (await fetch(`${gatewayUrl}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  return Number(/^msg_nodes\{state="active"\} (\d+)/m.exec(text)?.[1] ?? Number.NaN);
}

/** Issue 5, acceptance 1 and 3: SIGKILL a node with 200 SDK clients. */
describe('elasticity (v1: MSG_RESUME_WINDOW_MS=0): a node with 200 clients is SIGKILLed', function () {
  this.timeout(90_000);
  let cluster: LocalCluster | undefined;
  const everyone: TrackedClient[] = [];
  const ghostSockets: TestSocket[] = [];

  before(async function () {
    this.timeout(30_000);
    cluster = await startCluster({ nodes: 1, env: { MSG_LEASE_TTL_SECONDS: String(LEASE_TTL_SECONDS), MSG_LOG_LEVEL: 'warn', MSG_RESUME_WINDOW_MS: '0' } });
  });
  after(async () => {
    closeClients(everyone);
    for (const s of ghostSockets) s.close();
    await cluster?.stop();
  });

  it('reconnects every client elsewhere within lease TTL + 3 s, fails messages to the dead node within 2 s, loses nothing', async () => {
    const c = cluster as LocalCluster;
    const ledger = new MessageLedger();
    const run = `crash-${String(process.pid)}`;
    const gw = c.gatewayUrl;

    // 200 SDK clients on node-1, plus raw sockets that never reconnect (their users stay on the dead node).
    const victims = await startClients([gw], Array.from({ length: VICTIMS }, (_, i) => `${run}-v${String(i)}`), ledger);
    everyone.push(...victims);
    const ghosts = await Promise.all(Array.from({ length: GHOSTS }, (_, i) => connectUser(gw, `${run}-g${String(i)}`)));
    ghostSockets.push(...ghosts.map((g) => g.socket));
    expect(new Set([...victims.map((v) => v.nodeId), ...ghosts.map((g) => g.session.nodeId)])).to.deep.equal(new Set(['node-1']));

    await Promise.all([c.addNode(), c.addNode()]);
    await c.waitForGatewaysToSee(3);
    const observers = await startClients([gw], Array.from({ length: OBSERVERS }, (_, i) => `${run}-o${String(i)}`), ledger);
    everyone.push(...observers);
    expect(observers.filter((o) => o.nodeId === 'node-1')).to.have.length(0);
    const partner = (i: number): TrackedClient => observers[i % OBSERVERS] as TrackedClient;

    // Every victim talks to its partner before the crash.
    const warm = await Promise.all(victims.map((v, i) => ledger.send(v, partner(i).userId)));
    expect(warm.every((o) => o.kind === 'acked')).to.equal(true);

    const pickVictim = (): number => Math.floor(Math.random() * VICTIMS);
    const traffic = every(50, () => {
      for (let k = 0; k < 5; k += 1) {
        const i = pickVictim();
        void ledger.send(partner(i), (victims[i] as TrackedClient).userId);
        void ledger.send(victims[i] as TrackedClient, partner(i).userId);
      }
    });

    const t0 = Date.now();
    // killNode sends SIGKILL before its first await: the /connect calls below race the crash, not the exit.
    const killed = c.killNode('node-1').then(() => Date.now());

    // The avoid list lets /connect pick another node while the gateway still counts the dead one as active (its
    // lease has not run out yet): the metrics read right after show that node-1 was still in the view.
    const [avoidAnswer, avoidTwo] = await Promise.all([
      timedConnect(gw, `${run}-avoid1`, ['node-1']),
      timedConnect(gw, `${run}-avoid2`, ['node-1', 'node-2']),
    ]);
    const activeInView = await gatewayActiveNodes(gw);
    const avoidAtMs = Date.now() - t0;
    expect(avoidAnswer.status).to.equal(200);
    expect(avoidAnswer.body.nodeId).to.be.oneOf(['node-2', 'node-3']);
    expect(avoidTwo.body.nodeId).to.equal('node-3');
    expect(activeInView, 'active nodes in the gateway view when avoid was honoured').to.equal(3);
    const killedAt = await killed;
    // Both waits end on their own positive signal; the measured time is read right after, and asserted below.
    // A wait that runs out is itself a failure: its timeout is the bound plus one poll (etcdctl is a process per
    // look, so it is polled gently; the gateway view is the precise clock).
    const leaseBoundMs = LEASE_TTL_SECONDS * 1000 + 1500;
    const leaseGone = waitFor(async () => !(await etcdKeys(c.etcdEndpoint, c.prefix)).some((k) => k.endsWith('/node-1')), {
      timeoutMs: leaseBoundMs + 1000,
      intervalMs: 250,
      what: 'node-1 keys to expire with its lease',
    }).then(() => Date.now() - t0);
    const goneFromView = waitFor(async () => (await gatewayActiveNodes(gw)) === 2, {
      timeoutMs: leaseBoundMs + 1000,
      intervalMs: 100,
      what: 'the gateway to drop node-1',
    }).then(() => Date.now() - t0);
    leaseGone.catch(() => undefined);
    goneFromView.catch(() => undefined);

    // Messages to users left on the dead node: every one fails with RELAY_FAILED or PEER_UNAVAILABLE within 2 s,
    // before and after the lease runs out.
    const ghostOutcomes: Promise<{ code: string; ms: number; sentAfterKillMs: number }>[] = [];
    const ghostAnswered: number[] = [];
    const ghostTraffic = every(100, () => {
      ghosts.forEach((g, i) => {
        const sentAt = Date.now();
        ghostOutcomes.push(
          ledger.send(partner(i), g.session.userId).then((o) => {
            ghostAnswered.push(sentAt - t0);
            return { code: o.kind === 'error' ? o.code : 'ACKED', ms: (o.kind === 'pending' ? Number.NaN : o.at) - sentAt, sentAfterKillMs: sentAt - t0 };
          }),
        );
      });
    });

    // Each victim: welcomed on another node, then a message each way acked.
    const recoveredMs = await Promise.all(
      victims.map(async (v, i) => {
        for (;;) {
          if (Date.now() - t0 > 15_000) return Number.POSITIVE_INFINITY;
          await waitFor(() => v.nodeId !== undefined && v.nodeId !== 'node-1', { timeoutMs: 15_000, intervalMs: 10, what: `${v.userId} to reconnect` });
          const out = await ledger.send(v, partner(i).userId);
          const back = out.kind === 'acked' ? await ledger.send(partner(i), v.userId) : out;
          if (out.kind === 'acked' && back.kind === 'acked') return back.at - t0;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }),
    );

    const leaseGoneMs = await leaseGone;
    const goneFromViewMs = await goneFromView;
    // Ghost traffic runs until a message sent after the lease ran out has its answer (not for a fixed time).
    await waitFor(() => ghostAnswered.some((sentAfterKillMs) => sentAfterKillMs > leaseGoneMs + 500), {
      timeoutMs: 5000,
      what: 'an answer to a ghost message sent after the lease ran out',
    });
    await ghostTraffic.stop();
    await traffic.stop();
    await ledger.settle();
    const ghostResults = await Promise.all(ghostOutcomes);

    // The SDK reported node-1 as failed on its first /connect after the crash.
    const firstConnects = victims.map((v) => v.connects.find((call) => call.at >= t0));
    const withAvoid = firstConnects.filter((call) => call?.avoid.includes('node-1')).length;
    const closeCodes = new Map<number, number>();
    for (const v of victims) for (const cl of v.closes.filter((x) => x.welcomed)) closeCodes.set(cl.code, (closeCodes.get(cl.code) ?? 0) + 1);
    const report = ledger.report();
    const ghostCodes = new Map<string, number>();
    for (const g of ghostResults) ghostCodes.set(g.code, (ghostCodes.get(g.code) ?? 0) + 1);
    const ghostMs = ghostResults.map((g) => g.ms);
    const victimReconnectMs = victims.map((v) => (v.lastWelcome as { at: number }).at - t0);
    console.log(
      `      crash: SIGKILL took ${String(killedAt - t0)} ms; /connect with avoid honoured at ${String(avoidAtMs)} ms with node-1 still active in the gateway view; victim closes ${JSON.stringify(Object.fromEntries(closeCodes))};` +
        ` first /connect with avoid [node-1]: ${String(withAvoid)}/${String(VICTIMS)}; welcome elsewhere p50 ${String(percentile(victimReconnectMs, 50))}` +
        ` p99 ${String(percentile(victimReconnectMs, 99))} max ${String(percentile(victimReconnectMs, 100))} ms;` +
        ` exchanging both ways p50 ${String(percentile(recoveredMs, 50))} p99 ${String(percentile(recoveredMs, 99))} max ${String(percentile(recoveredMs, 100))} ms;` +
        ` node-1 keys gone at ${String(leaseGoneMs)} ms, out of the gateway view at ${String(goneFromViewMs)} ms` +
        `\n      crash ghost messages: ${JSON.stringify(Object.fromEntries(ghostCodes))}, answered in p50 ${String(percentile(ghostMs, 50))}` +
        ` max ${String(percentile(ghostMs, 100))} ms (sent 0–${String(Math.round(Math.max(...ghostResults.map((g) => g.sentAfterKillMs))))} ms after the kill)` +
        `\n      crash messages: ${JSON.stringify(report)}`,
    );

    // Gone from allocation, and its keys gone from etcd, within the lease TTL (plus etcd's expiry check and one poll,
    // on a loaded machine; measured: 2,107 ms and 2,274 ms).
    expect(goneFromViewMs, 'node-1 dropped from the gateway view (ms after SIGKILL)').to.be.at.most(leaseBoundMs);
    expect(leaseGoneMs, 'node-1 keys expired in etcd (ms after SIGKILL)').to.be.at.most(leaseBoundMs);
    expect(ghostResults.some((g) => g.sentAfterKillMs < goneFromViewMs) && ghostResults.some((g) => g.sentAfterKillMs > leaseGoneMs), 'ghost messages before and after the lease ran out').to.equal(true);
    expect(withAvoid, 'first /connect after the crash carries avoid: [node-1]').to.equal(VICTIMS);
    expect(victims.every((v) => v.nodeId !== undefined && v.nodeId !== 'node-1')).to.equal(true);
    expect(percentile(recoveredMs, 100), 'p100 reconnect-and-exchange after SIGKILL (ms)').to.be.at.most((LEASE_TTL_SECONDS + 3) * 1000);
    expect(ghostResults.length).to.be.above(100);
    expect(ghostResults.filter((g) => g.code !== 'RELAY_FAILED' && g.code !== 'PEER_UNAVAILABLE')).to.deep.equal([]);
    expect(percentile(ghostMs, 100), 'slowest answer for a message to the dead node (ms)').to.be.at.most(2000);
    expect(report.silentlyLost, `silently lost: ${JSON.stringify(ledger.suspects())}`).to.equal(0);
    expect(report.duplicates, 'delivered twice').to.equal(0);
    expect(report.errorButReceived, 'errored yet delivered').to.equal(0);
  });
});
