import { expect } from 'chai';
import { startCluster, waitFor, type LocalCluster } from '@messaging-server/testkit';
import { ContractClient } from './support/contract-client.js';
import { percentile } from '@messaging-server/harness/stats';
import { SdkParty } from './support/sdk-party.js';

/**
 * Issue 12, acceptance 2: pairs across nodes send every 20 ms while a node goes away. Every message is answered with
 * an ack (never an error), arrives exactly once after the receiver drops repeats, and in order per pair. Prints the
 * repeats dropped and what the resume cost: move → delivery for the messages sent while their recipient was away.
 */

/** Pairs per kind of client: the SDK, and a client written from the contract alone. */
const PAIRS_PER_KIND = 5;
const SEND_EVERY_MS = 20;

type Party = ContractClient | SdkParty;

interface Pair {
  sender: Party;
  recipient: Party;
  sent: number;
  outcomes: Promise<{ seq: number; code?: string }>[];
  sentAt: number[];
  receivedAt: Map<number, number>;
  order: number[];
}

/** Pairs of contract clients, their traffic, and the checks every scenario ends with. */
class Traffic {
  readonly pairs: Pair[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly run: string) {}

  /** Half SDK clients, half contract clients; the i-th sender and recipient are always of the same kind. */
  async addPairs(gatewayUrl: string, who: 'senders' | 'recipients'): Promise<Party[]> {
    const name = (kind: string, i: number): string => `${this.run}-${kind}${who === 'senders' ? 's' : 'r'}${String(i)}`;
    const clients: Party[] = [
      ...Array.from({ length: PAIRS_PER_KIND }, (_, i) => new SdkParty(name('sdk', i), gatewayUrl)),
      ...Array.from({ length: PAIRS_PER_KIND }, (_, i) => new ContractClient(name('raw', i), gatewayUrl)),
    ];
    await Promise.all(clients.map((c) => c.start()));
    return clients;
  }

  pair(senders: Party[], recipients: Party[]): void {
    senders.forEach((sender, i) => {
      const recipient = recipients[i] as Party;
      const pair: Pair = { sender, recipient, sent: 0, outcomes: [], sentAt: [], receivedAt: new Map(), order: [] };
      recipient.onMessageHook = (message) => {
        const seq = (message.content as { s: number }).s;
        pair.receivedAt.set(seq, Date.now());
        pair.order.push(seq);
      };
      this.pairs.push(pair);
    });
  }

  start(): void {
    this.timer = setInterval(() => {
      for (const pair of this.pairs) {
        const seq = pair.sent++;
        pair.sentAt[seq] = Date.now();
        pair.outcomes.push(pair.sender.send(pair.recipient.userId, { s: seq }).then((o) => (o.kind === 'acked' ? { seq } : { seq, code: o.code })));
      }
    }, SEND_EVERY_MS);
  }

  async stopAndSettle(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.pairs.flatMap((p) => p.outcomes));
    await waitFor(() => this.pairs.every((p) => p.receivedAt.size >= p.sent), { what: 'every message received', timeoutMs: 15_000 }).catch(() => undefined);
  }

  /** Asserts the scenario's outcome and returns the figures to print. */
  async verify(movesOf: (pair: Pair) => Move[]): Promise<string> {
    const errors: string[] = [];
    let missing = 0;
    let outOfOrder = 0;
    let sent = 0;
    const resume: number[] = [];
    for (const pair of this.pairs) {
      sent += pair.sent;
      for (const o of await Promise.all(pair.outcomes)) if (o.code !== undefined) errors.push(o.code);
      for (let seq = 0; seq < pair.sent; seq += 1) if (!pair.receivedAt.has(seq)) missing += 1;
      pair.order.forEach((seq, i) => {
        if (i > 0 && seq < (pair.order[i - 1] as number)) outOfOrder += 1;
      });
      for (const move of movesOf(pair)) {
        for (let seq = 0; seq < pair.sent; seq += 1) {
          const at = pair.receivedAt.get(seq);
          if (at !== undefined && (pair.sentAt[seq] as number) >= move.from && (pair.sentAt[seq] as number) <= move.to) resume.push(at - move.from);
        }
      }
    }
    const repeats = this.pairs.reduce((n, p) => n + p.recipient.repeatsDropped + p.sender.repeatsDropped, 0);
    expect(errors, 'errored sends').to.deep.equal([]);
    expect(missing, 'messages never received').to.equal(0);
    expect(outOfOrder, 'messages out of order per pair').to.equal(0);
    const p = (q: number): string => (resume.length === 0 ? '–' : `${String(percentile(resume, q))} ms`);
    return `${String(sent)} sent, 0 errors, 0 missing, 0 out of order; ${String(repeats)} repeats dropped; move → delivery p50 ${p(50)}, p99 ${p(99)} (${String(resume.length)} messages sent during a move)`;
  }

  close(): void {
    clearInterval(this.timer);
    for (const pair of this.pairs) {
      pair.sender.stop();
      pair.recipient.stop();
    }
  }
}

interface Move {
  from: number;
  to: number;
}

/** Each span from a close of the client's connection to its next welcome. */
function movesOf(client: Party): Move[] {
  return client.closes.flatMap((close) => {
    const welcome = client.welcomes.find((w) => w.at >= close.at);
    return welcome ? [{ from: close.at, to: welcome.at }] : [];
  });
}

describe('continuity (v1.1): pairs across nodes lose nothing while a node goes away', function () {
  this.timeout(120_000);
  let cluster: LocalCluster | undefined;
  let traffic: Traffic | undefined;

  afterEach(async function () {
    traffic?.close();
    await cluster?.stop();
    cluster = undefined;
  });

  /** Recipients on node-1, senders on the nodes added after them. */
  async function recipientsAlone(run: string): Promise<{ c: LocalCluster; t: Traffic }> {
    const c = await startCluster({ nodes: 1, env: { MSG_LEASE_TTL_SECONDS: '2', MSG_LOG_LEVEL: 'warn' } });
    cluster = c;
    const t = new Traffic(run);
    traffic = t;
    const recipients = await t.addPairs(c.gatewayUrl, 'recipients');
    await Promise.all([c.addNode(), c.addNode()]);
    await c.waitForGatewaysToSee(3);
    const senders = await t.addPairs(c.gatewayUrl, 'senders');
    expect(new Set(recipients.map((r) => r.nodeId))).to.deep.equal(new Set(['node-1']));
    expect(senders.filter((s) => s.nodeId === 'node-1')).to.deep.equal([]);
    t.pair(senders, recipients);
    return { c, t };
  }

  it('while the recipients’ node drains', async function () {
    const { c, t } = await recipientsAlone(`drain-${String(process.pid)}`);
    t.start();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const exit = await c.drainNode('node-1');
    expect(exit.code).to.equal(0);
    await waitFor(() => t.pairs.every((p) => p.recipient.nodeId !== undefined), { what: 'every recipient back', timeoutMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await t.stopAndSettle();
    console.log(`      drain: ${await t.verify((pair) => movesOf(pair.recipient))}`);
  });

  it('while the recipients’ node is SIGKILLed', async function () {
    const { c, t } = await recipientsAlone(`kill-${String(process.pid)}`);
    t.start();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await c.killNode('node-1');
    await waitFor(() => t.pairs.every((p) => p.recipient.nodeId !== undefined && p.recipient.nodeId !== 'node-1'), {
      what: 'every recipient back',
      timeoutMs: 10_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await t.stopAndSettle();
    console.log(`      SIGKILL: ${await t.verify((pair) => movesOf(pair.recipient))}`);
  });

  it('while the senders’ node is drained, and then the node they moved to is SIGKILLed', async function () {
    const c = await startCluster({ nodes: 1, env: { MSG_LEASE_TTL_SECONDS: '2', MSG_LOG_LEVEL: 'warn' } });
    cluster = c;
    const t = new Traffic(`sender-${String(process.pid)}`);
    traffic = t;
    const senders = await t.addPairs(c.gatewayUrl, 'senders');
    await c.addNode();
    await c.waitForGatewaysToSee(2);
    const recipients = await t.addPairs(c.gatewayUrl, 'recipients');
    expect(new Set(recipients.map((r) => r.nodeId))).to.deep.equal(new Set(['node-2']));
    t.pair(senders, recipients);
    await c.addNode();
    await c.waitForGatewaysToSee(3);
    t.start();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await c.drainNode('node-1')).code).to.equal(0);
    await waitFor(() => t.pairs.every((p) => p.sender.nodeId === 'node-3'), { what: 'every sender on node-3', timeoutMs: 10_000 });
    await c.addNode();
    await c.waitForGatewaysToSee(3);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await c.killNode('node-3');
    await waitFor(() => t.pairs.every((p) => p.sender.nodeId !== undefined && p.sender.nodeId !== 'node-3'), { what: 'every sender back', timeoutMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await t.stopAndSettle();
    console.log(`      sender drained then SIGKILLed: ${await t.verify((pair) => movesOf(pair.sender))}`);
  });
});
