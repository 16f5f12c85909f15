import { expect } from 'chai';
import { Batcher } from './batcher.js';
import type { Envelope } from './envelope.js';
import { MemorySessionStore, silentLogger, type PeerTransport } from '@messaging-server/core';
import { isPastDeadline, parseDeliverRequest, parseDeliverResponse, parseOutcomes, type DeliverRequest } from './internal-wire.js';
import { PEER_LANES, Router } from './router.js';
import { PendingQueues } from './pending-queues.js';
import { secretsEqual } from './secure-compare.js';
import { TokenBucket } from './token-bucket.js';
import { waitFor } from '@messaging-server/testkit';

function envelope(to: string, content: number): Envelope {
  return { from: 'alice', to, content, id: `m${String(content)}`, origin: { kind: 'local', cid: 'c' }, size: 10 };
}

describe('TokenBucket', function () {
  it('allows the burst, then the rate', function () {
    const bucket = new TokenBucket(10, 5, 5000, 0);
    const first = Array.from({ length: 7 }, () => bucket.take(0));
    expect(first).to.deep.equal(['ok', 'ok', 'ok', 'ok', 'ok', 'limited', 'limited']);
    expect(bucket.take(100)).to.equal('ok'); // 100 ms at 10/s refills one token
    expect(bucket.take(100)).to.equal('limited');
  });

  it('reports abuse only after 5 s far over the rate', function () {
    const bucket = new TokenBucket(10, 10, 5000, 0);
    let verdict = 'ok';
    let at = 0;
    for (; at <= 6000 && verdict !== 'abusive'; at += 10) for (let i = 0; i < 3; i += 1) verdict = bucket.take(at);
    expect(verdict).to.equal('abusive');
    expect(at).to.be.within(5000, 5100);
  });

  it('does not report abuse for a sender slightly over its rate', function () {
    const bucket = new TokenBucket(100, 100, 5000, 0);
    let abusive = false;
    // 150/s against 100/s for 10 s: rate limited all along, but not "far over" (2× the rate).
    for (let at = 0; at <= 10_000; at += 20) for (let i = 0; i < 3; i += 1) if (bucket.take(at) === 'abusive') abusive = true;
    expect(abusive).to.equal(false);
  });
});

describe('PendingQueues', function () {
  it('caps per recipient and per node', function () {
    const queues = new PendingQueues(2, 3, 10_000, () => undefined);
    expect([queues.add(envelope('bob', 1)), queues.add(envelope('bob', 2)), queues.add(envelope('bob', 3))]).to.deep.equal(['held', 'held', 'full']);
    expect([queues.add(envelope('carol', 4)), queues.add(envelope('dave', 5))]).to.deep.equal(['held', 'full']);
    expect(queues.take('bob').map((e) => e.content)).to.deep.equal([1, 2]);
    expect(queues.size).to.equal(1);
    queues.close();
  });

  it('expires messages after the TTL, in order', async function () {
    const expired: Envelope[] = [];
    const queues = new PendingQueues(10, 100, 50, (e) => expired.push(e));
    queues.add(envelope('bob', 1));
    queues.add(envelope('carol', 2));
    queues.add(envelope('bob', 3));
    await waitFor(() => expired.length === 3, { what: 'three expired' });
    expect(expired.map((e) => e.content)).to.deep.equal([1, 3, 2]);
    expect(queues.size).to.equal(0);
    expect(queues.has('bob')).to.equal(false);
  });
});

describe('Batcher', function () {
  it('keeps one batch in flight and sends what queued meanwhile together, in order', async function () {
    const sent: number[][] = [];
    let release!: () => void;
    const batcher = new Batcher<number>(
      async (batch) => {
        sent.push(batch);
        if (sent.length === 1) await new Promise<void>((resolve) => (release = resolve));
        return true;
      },
      () => undefined,
    );
    batcher.push(1);
    await waitFor(() => sent.length === 1, { what: 'first batch' });
    for (let i = 2; i <= 5; i += 1) batcher.push(i);
    expect(sent).to.have.length(1);
    release();
    await waitFor(() => batcher.idle, { what: 'idle' });
    expect(sent).to.deep.equal([[1], [2, 3, 4, 5]]);
  });

  it('hands everything queued behind a failed batch to abandon at once', async function () {
    const abandoned: number[] = [];
    let release!: () => void;
    const batcher = new Batcher<number>(
      async () => {
        await new Promise<void>((resolve) => (release = resolve));
        return false;
      },
      (items) => abandoned.push(...items),
    );
    batcher.push(1);
    await waitFor(() => release !== undefined, { what: 'in flight' });
    batcher.push(2);
    batcher.push(3);
    release();
    await waitFor(() => batcher.idle, { what: 'idle' });
    expect(abandoned).to.deep.equal([2, 3]);
  });

  it('splits batches by count and size', async function () {
    const sent: number[][] = [];
    const batcher = new Batcher<number>(
      async (batch) => {
        sent.push(batch);
        return true;
      },
      () => undefined,
      3,
      (n) => n,
      10,
    );
    for (const n of [1, 1, 1, 1, 6, 6, 20]) batcher.push(n);
    await waitFor(() => batcher.idle, { what: 'idle' });
    expect(sent).to.deep.equal([[1, 1, 1], [1, 6], [6], [20]]);
  });
});

describe('internal wire parsing', function () {
  it('accepts well-formed requests and rejects malformed ones', function () {
    const good = { fromNode: 'a', replyTo: 'http://a', messages: [{ from: 'alice', to: 'bob', content: { x: 1 }, id: 'm1', cid: 'c' }] };
    expect(parseDeliverRequest(good)?.messages).to.have.length(1);
    expect(parseDeliverRequest({ ...good, messages: [{ from: 'alice', to: 'b o b', content: 1, cid: 'c' }] })).to.equal(undefined);
    expect(parseDeliverRequest({ ...good, messages: [{ from: 'alice', to: 'bob', cid: 'c' }] })).to.equal(undefined);
    expect(parseDeliverRequest([])).to.equal(undefined);
    expect(parseDeliverResponse({ results: [{ status: 'delivered' }] }, 2)).to.equal(undefined);
    expect(parseDeliverResponse({ results: [{ status: 'error', code: 'WHAT' }] }, 1)).to.deep.equal([{ status: 'error', code: 'RELAY_FAILED' }]);
    expect(parseOutcomes({ outcomes: [{ userId: 'alice', cid: 'c', result: 'EXPIRED' }] })).to.deep.equal([{ userId: 'alice', cid: 'c', result: 'EXPIRED' }]);
    expect(parseOutcomes({ outcomes: [{ userId: 'alice', cid: 'c', id: 'm', result: 'NOPE' }] })).to.equal(undefined);
  });

  it('carries a delivery deadline and tells when it has passed', function () {
    const request = parseDeliverRequest({ fromNode: 'a', replyTo: 'http://a', messages: [], deadline: 1000 });
    if (!request) throw new Error('expected a request');
    expect(request.deadline).to.equal(1000);
    expect(isPastDeadline(request, 999)).to.equal(false);
    expect(isPastDeadline(request, 1001)).to.equal(true);
    const withoutDeadline = parseDeliverRequest({ fromNode: 'a', replyTo: 'http://a', messages: [], deadline: 'soon' });
    expect(withoutDeadline && isPastDeadline(withoutDeadline, Number.MAX_SAFE_INTEGER)).to.equal(false);
  });

  it('compares secrets of any lengths', function () {
    expect(secretsEqual('abc', 'abc')).to.equal(true);
    expect(secretsEqual('abc', 'abcd')).to.equal(false);
    expect(secretsEqual('', 'x')).to.equal(false);
  });
});

describe('Router lanes to a peer node', function () {
  it('keeps several requests in flight to one peer, and each recipient in order', async function () {
    const inFlight = { now: 0, max: 0 };
    const received = new Map<string, number[]>();
    const transport: PeerTransport = {
      async post<T>(_peer: string, _path: string, body: unknown): Promise<T> {
        const request = body as DeliverRequest;
        inFlight.now += 1;
        inFlight.max = Math.max(inFlight.max, inFlight.now);
        await new Promise((resolve) => setTimeout(resolve, 20));
        inFlight.now -= 1;
        for (const m of request.messages) received.set(m.to, [...(received.get(m.to) ?? []), m.content as number]);
        return { results: request.messages.map(() => ({ status: 'delivered' })) } as T;
      },
      forget() {},
      async close() {},
    };
    const sessions = new MemorySessionStore();
    const recipients = Array.from({ length: 16 }, (_, i) => `user-${String(i)}`);
    for (const userId of recipients) {
      await sessions.put({ userId, listeningAddress: 'http://b/ws', listeningKey: 'k', acked: true, nodeId: 'node-b', createdAt: new Date().toISOString() }, 60);
    }
    const settled: string[] = [];
    const router = new Router({
      nodeId: 'node-a',
      replyTo: 'http://a',
      sessions,
      transport,
      log: silentLogger,
      metrics: { hot: { relayedLocal: 0, relayedRemote: 0, acks: 0 }, relayLatency: { observe() {} } } as never,
      deliverIfConnected: () => undefined,
      deliverOrHold: () => 'PEER_UNAVAILABLE',
      settle: (envelope, outcome) => settled.push(`${String(envelope.id)}:${outcome}`),
    });
    router.onRegistryEvent({
      type: 'snapshot',
      entries: [{ kind: 'node', id: 'node-b', value: { nodeId: 'node-b', listeningAddress: 'http://b/ws', internalAddress: 'http://b', state: 'active', startedAt: '', version: '' } }],
    });
    const perRecipient = 20;
    for (let i = 0; i < perRecipient; i++) {
      for (const to of recipients) {
        router.route({ from: 'alice', to, content: i, id: `${to}-${String(i)}`, origin: { kind: 'local', cid: 'c' }, size: 10 });
      }
    }
    await waitFor(() => settled.length === perRecipient * recipients.length, { what: 'every message settled' });
    expect(inFlight.max, 'requests in flight to node-b at once').to.be.within(2, PEER_LANES);
    for (const to of recipients) expect(received.get(to), to).to.deep.equal([...Array(perRecipient).keys()]);
    expect(settled.every((s) => s.endsWith(':delivered'))).to.equal(true);
  });
});
