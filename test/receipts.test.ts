import { expect } from 'chai';
import { FreezingProxy, freePort, requestSession, startCluster, TestSocket, waitFor, type LocalCluster } from '@messaging-server/testkit';
import type { ServerFrame } from '@messaging-server/protocol';
import { SdkParty } from './support/sdk-party.js';

/**
 * Issue 24 (contract v1.2, receipts): an ack means the recipient's client has the message, so nothing acked is lost
 * when its connection dies silently or its node crashes, and a client that stops confirming is cut (4006) and gets
 * what it held after its next welcome. Senders write every 20 ms throughout; every sender and recipient is the SDK,
 * with receipts on (its default).
 */

const SEND_EVERY_MS = 20;
/** The recipients notice a dead connection by their pings: one every 500 ms, dead after 1 s without a pong. */
const RECIPIENT = { pingIntervalMs: 500, pingTimeoutMs: 1000 } as const;
const CLUSTER_ENV = { MSG_LEASE_TTL_SECONDS: '2', MSG_LOG_LEVEL: 'warn', MSG_PENDING_MAX: '1024' };

interface Flow {
  sender: SdkParty;
  recipient: SdkParty;
  sent: number;
  acked: Set<number>;
  errors: string[];
  outcomes: Promise<void>[];
  /** What the recipient's app got, in order (the SDK dropped the repeats). */
  got: number[];
}

/** Streams from senders to recipients, and the checks every scenario ends with. */
class Streams {
  readonly flows: Flow[] = [];
  private timer: NodeJS.Timeout | undefined;

  add(sender: SdkParty, recipient: SdkParty): void {
    const flow: Flow = { sender, recipient, sent: 0, acked: new Set(), errors: [], outcomes: [], got: [] };
    const others = this.flows.filter((f) => f.recipient === recipient);
    this.flows.push(flow);
    const mine = [...others, flow];
    recipient.onMessageHook = (message) => {
      const from = mine.find((f) => f.sender.userId === message.from);
      from?.got.push((message.content as { s: number }).s);
    };
  }

  start(): void {
    this.timer = setInterval(() => {
      for (const flow of this.flows) {
        const s = flow.sent++;
        flow.outcomes.push(
          flow.sender.send(flow.recipient.userId, { s }).then((o) => {
            if (o.kind === 'acked') flow.acked.add(s);
            else flow.errors.push(`${String(s)}:${o.code}`);
          }),
        );
      }
    }, SEND_EVERY_MS);
  }

  async stopAndVerify(): Promise<string> {
    clearInterval(this.timer);
    await Promise.all(this.flows.flatMap((f) => f.outcomes));
    await waitFor(() => this.flows.every((f) => f.got.length >= f.acked.size), { what: 'every acked message received', timeoutMs: 10_000 }).catch(() => undefined);
    let sent = 0;
    for (const flow of this.flows) {
      sent += flow.sent;
      const name = `${flow.sender.userId} → ${flow.recipient.userId}`;
      expect(flow.errors, `${name}: answered with an error`).to.deep.equal([]);
      const missing = [...flow.acked].filter((s) => !flow.got.includes(s));
      expect(missing, `${name}: acked and never received`).to.deep.equal([]);
      expect(new Set(flow.got).size, `${name}: received twice after repeats were dropped`).to.equal(flow.got.length);
      const disorder = flow.got.filter((s, i) => i > 0 && s < (flow.got[i - 1] as number));
      expect(disorder, `${name}: out of order`).to.deep.equal([]);
    }
    const repeats = new Set(this.flows.map((f) => f.recipient)).values();
    const dropped = [...repeats].reduce((n, r) => n + r.repeatsDropped, 0);
    return `${String(sent)} sent, all acked, each received once in order; ${String(dropped)} repeats dropped by the recipients`;
  }

  close(): void {
    clearInterval(this.timer);
    for (const flow of this.flows) {
      flow.sender.stop();
      flow.recipient.stop();
    }
  }
}

/** Every SDK client a test started, stopped after it (one left running would keep reconnecting, and mocha alive). */
const started: SdkParty[] = [];

async function parties(names: string[], gatewayUrl: string, options: Partial<typeof RECIPIENT> = {}): Promise<SdkParty[]> {
  const all = names.map((name) => new SdkParty(name, gatewayUrl, options));
  started.push(...all);
  await Promise.all(all.map((p) => p.start()));
  return all;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('receipts (v1.2): nothing acked is lost', function () {
  this.timeout(120_000);
  let cluster: LocalCluster | undefined;
  let streams: Streams | undefined;
  let proxy: FreezingProxy | undefined;
  const sockets: TestSocket[] = [];

  afterEach(async function () {
    streams?.close();
    streams = undefined;
    for (const socket of sockets.splice(0)) socket.close();
    for (const party of started.splice(0)) party.stop();
    await proxy?.close();
    proxy = undefined;
    await cluster?.stop();
    cluster = undefined;
  });

  /** A cluster whose node-1 is reached through a FreezingProxy: its listeningAddress is the proxy's. */
  async function proxiedNode1(): Promise<{ c: LocalCluster; p: FreezingProxy }> {
    const c = await startCluster({ nodes: 0, env: CLUSTER_ENV });
    cluster = c;
    const nodePort = await freePort();
    const proxyPort = await freePort();
    const p = new FreezingProxy(nodePort);
    proxy = p;
    await p.listen(proxyPort);
    await c.addNode({ ports: { port: nodePort, internalPort: await freePort() }, env: { MSG_PUBLIC_URL: `http://127.0.0.1:${String(proxyPort)}/ws` } });
    await c.waitForGatewaysToSee(1);
    return { c, p };
  }

  it('when the recipients’ connections go silent mid-stream (no FIN, no RST) behind a TCP proxy', async function () {
    const run = `silent-${String(process.pid)}`;
    const { c, p } = await proxiedNode1();
    const recipients = await parties([0, 1, 2].map((i) => `${run}-r${String(i)}`), c.gatewayUrl, RECIPIENT);
    const localSenders = await parties([0, 1, 2].map((i) => `${run}-l${String(i)}`), c.gatewayUrl);
    await c.addNode();
    await c.waitForGatewaysToSee(2);
    const remoteSenders = await parties([0, 1, 2].map((i) => `${run}-s${String(i)}`), c.gatewayUrl);
    expect([...recipients, ...localSenders].map((p) => p.nodeId)).to.deep.equal(Array(6).fill('node-1'));
    expect(remoteSenders.map((p) => p.nodeId)).to.deep.equal(Array(3).fill('node-2'));
    const s = new Streams();
    streams = s;
    recipients.forEach((r, i) => {
      s.add(localSenders[i] as SdkParty, r);
      s.add(remoteSenders[i] as SdkParty, r);
    });
    s.start();
    await sleep(500);
    const frozeAt = Date.now();
    expect(p.freeze((head) => head.includes('/websocket') && head.includes(`userId=${run}-r`))).to.equal(3);
    await waitFor(() => recipients.every((r) => r.welcomes.length >= 2), { what: 'every recipient welcomed again', timeoutMs: 15_000 });
    const backAfter = Math.max(...recipients.map((r) => (r.welcomes[1] as { at: number }).at)) - frozeAt;
    expect(recipients.map((r) => r.nodeId), 'the recipients avoided the node they lost').to.deep.equal(Array(3).fill('node-2'));
    await sleep(500);
    console.log(`      silent death: ${await s.stopAndVerify()}; recipients back ${String(backAfter)} ms after the freeze`);
  });

  // A host that goes down takes with it what it had written and sends no FIN: the proxy goes silent, and the node is
  // SIGKILLed half a second later, before the recipients' pings notice. What it wrote meanwhile never arrives, and the
  // dead node can tell nobody: the copies kept on the senders' node are all there is.
  it('when the recipients’ node is SIGKILLed mid-stream, with what it wrote lost on the way', async function () {
    const run = `kill-${String(process.pid)}`;
    const { c, p } = await proxiedNode1();
    const recipients = await parties([0, 1, 2, 3].map((i) => `${run}-r${String(i)}`), c.gatewayUrl, RECIPIENT);
    await c.addNode();
    await c.waitForGatewaysToSee(2);
    const senders = await parties([0, 1, 2, 3].map((i) => `${run}-s${String(i)}`), c.gatewayUrl);
    expect(recipients.map((p) => p.nodeId)).to.deep.equal(Array(4).fill('node-1'));
    expect(senders.map((p) => p.nodeId)).to.deep.equal(Array(4).fill('node-2'));
    const s = new Streams();
    streams = s;
    recipients.forEach((r, i) => s.add(senders[i] as SdkParty, r));
    s.start();
    await sleep(500);
    expect(p.freeze((head) => head.includes('/websocket') && head.includes(`userId=${run}-r`))).to.equal(4);
    await sleep(500);
    await c.killNode('node-1');
    await waitFor(() => recipients.every((r) => r.nodeId === 'node-2'), { what: 'every recipient on node-2', timeoutMs: 15_000 });
    await sleep(500);
    console.log(`      SIGKILL: ${await s.stopAndVerify()}`);
  });

  describe('a client that stops confirming', function () {
    async function unconfirming(c: LocalCluster, userId: string, receipts = true): Promise<TestSocket> {
      const session = await requestSession(c.gatewayUrl, userId);
      const socket = TestSocket.forSession(session, { address: `${session.listeningAddress}${receipts ? '?receipts=1' : ''}`, transports: ['websocket'] });
      sockets.push(socket);
      await socket.welcomed();
      return socket;
    }

    const contentOf = (socket: TestSocket): number[] => socket.framesOfType('message').map((m) => (m.content as { s: number }).s);

    it(`is closed with 4006 past MSG_MAX_UNCONFIRMED; what it held comes after its next welcome, and only then the acks`, async function () {
      const c = await startCluster({ nodes: 1, env: { ...CLUSTER_ENV, MSG_MAX_UNCONFIRMED: '20' } });
      cluster = c;
      const run = `stall-${String(process.pid)}`;
      const first = await unconfirming(c, `${run}-r`);
      const [sender] = await parties([`${run}-s`], c.gatewayUrl);
      let answered = 0;
      const outcomes = Array.from({ length: 30 }, (_, s) =>
        (sender as SdkParty).send(`${run}-r`, { s }).then((o) => {
          answered += 1;
          return o;
        }),
      );
      const closed = await first.closed();
      expect(closed).to.deep.equal({ code: 4006, reason: 'receipts_stalled' });
      const seqs = first.framesOfType('message').map((m) => m.seq);
      expect(seqs.slice(0, 21)).to.deep.equal(Array.from({ length: 21 }, (_, i) => i + 1));
      await sleep(300);
      expect(answered, 'no ack before the recipient confirmed').to.equal(0);
      const second = await unconfirming(c, `${run}-r`);
      await waitFor(() => second.framesOfType('message').length >= 30, { what: 'all 30 again', timeoutMs: 10_000 });
      expect(contentOf(second)).to.deep.equal(Array.from({ length: 30 }, (_, i) => i));
      expect(answered, 'still no ack: nothing confirmed yet').to.equal(0);
      second.send({ type: 'receipt', seq: second.framesOfType('message').at(-1)?.seq });
      const results = await Promise.all(outcomes);
      expect(results.map((o) => o.kind)).to.deep.equal(Array(30).fill('acked'));
    });

    it('is closed with 4006 once a message stayed unconfirmed for 10 s, and gets it after its next welcome', async function () {
      const c = await startCluster({ nodes: 1, env: CLUSTER_ENV });
      cluster = c;
      const run = `quiet-${String(process.pid)}`;
      const first = await unconfirming(c, `${run}-r`);
      const [sender] = await parties([`${run}-s`], c.gatewayUrl);
      const outcome = (sender as SdkParty).send(`${run}-r`, { s: 7 });
      await first.waitForFrame((f) => f.type === 'message');
      const writtenAt = Date.now();
      const closed = await first.closed(15_000);
      const after = Date.now() - writtenAt;
      expect(closed).to.deep.equal({ code: 4006, reason: 'receipts_stalled' });
      expect(after).to.be.within(9_000, 11_500);
      const second = await unconfirming(c, `${run}-r`);
      const again = await second.waitForFrame<Extract<ServerFrame, { type: 'message' }>>((f) => f.type === 'message');
      expect(again.content).to.deep.equal({ s: 7 });
      second.send({ type: 'receipt', seq: again.seq });
      expect((await outcome).kind).to.equal('acked');
      console.log(`      closed ${String(after)} ms after the write`);
    });

    it('without receipts=1 (a v1.1 client) sees no seq, and its sender is acked at once', async function () {
      const c = await startCluster({ nodes: 1, env: CLUSTER_ENV });
      cluster = c;
      const run = `v11-${String(process.pid)}`;
      const recipient = await unconfirming(c, `${run}-r`, false);
      const [sender] = await parties([`${run}-s`], c.gatewayUrl);
      const results = await Promise.all(Array.from({ length: 5 }, (_, s) => (sender as SdkParty).send(`${run}-r`, { s })));
      expect(results.map((o) => o.kind)).to.deep.equal(Array(5).fill('acked'));
      // Acked once written to the recipient's connection: the frames may still be on their way to it.
      await waitFor(() => recipient.framesOfType('message').length >= 5, { what: 'the 5 messages at the recipient' });
      expect(recipient.framesOfType('message').map((m) => m.seq)).to.deep.equal(Array(5).fill(undefined));
      recipient.send({ type: 'receipt', seq: 5 });
      await sleep(200);
      expect(recipient.framesOfType('error')).to.deep.equal([]);
      expect(recipient.closeEvent).to.equal(undefined);
    });
  });
});
