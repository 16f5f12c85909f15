import { expect } from 'chai';
import { MemorySessionStore, silentLogger, type PeerTransport, type RegistryEvent } from '@messaging-server/core';
import { waitFor } from '@messaging-server/testkit';
import type { DeliverRequest } from './peer/internal-wire.js';
import { HeldBudget } from './held-budget.js';
import { OutcomeLinks } from './peer/outcome-links.js';
import { PEER_LANES, PeerLinks } from './peer/peer-links.js';
import { Router } from './router.js';
import { asNodeId } from '@messaging-server/protocol';


const NODE_B: RegistryEvent = {
  type: 'snapshot',
  entries: [{ kind: 'node', id: 'node-b', value: { nodeId: asNodeId('node-b'), listeningAddress: 'http://b/ws', internalAddress: 'http://b', state: 'active', startedAt: '', version: '' } }],
};

function sessionOnB(sessions: MemorySessionStore, userId: string): Promise<void> {
  return sessions.put({ userId, listeningAddress: 'http://b/ws', listeningKey: 'k', acked: true, nodeId: 'node-b', createdAt: new Date().toISOString() }, 60);
}

/** A router on node-a with nobody connected here; `settled` lists each outcome as `<id>:<outcome>`. */
function routerWith(overrides: { transport?: PeerTransport; movedAt?: (userId: string) => number | undefined; resumeWindowMs?: number }) {
  const counter = { inc() {} };
  const settled: string[] = [];
  const sessions = new MemorySessionStore();
  const transport = overrides.transport ?? { post: () => Promise.reject(new Error('unused')), forget() {}, async close() {} };
  const metrics = {
    hot: { relayedLocal: 0, relayedRemote: 0, acks: 0 },
    relayLatency: { observe() {} },
    continuity: { held: { set() {} }, resumed: counter, expired: counter, redelivered: counter },
  } as never;
  const outcomes = new OutcomeLinks({ transport, log: silentLogger });
  const router = new Router({
    nodeId: asNodeId('node-a'),
    sessions,
    peer: (answers) => new PeerLinks({ nodeId: asNodeId('node-a'), replyTo: 'http://a', transport, log: silentLogger, metrics, outcomes }, answers),
    log: silentLogger,
    metrics,
    resumeWindowMs: overrides.resumeWindowMs ?? 60_000,
    holdMaxPerRecipient: 256,
    holdBudget: new HeldBudget({ totalBytes: 1 << 26, perSenderBytes: 1 << 20, perRecipientBytes: 1 << 20 }),
    deliverIfConnected: () => undefined,
    deliverOrHold: () => 'PEER_UNAVAILABLE',
    isHereOrComing: () => false,
    movedAt: overrides.movedAt ?? (() => undefined),
    settle: (envelope, outcome) => settled.push(`${envelope.id ?? '(no id)'}:${outcome}`),
  });
  return { router, sessions, settled };
}

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
    const { router, sessions, settled } = routerWith({ transport, resumeWindowMs: 0 });
    router.onRegistryEvent(NODE_B);
    const recipients = Array.from({ length: 16 }, (_, i) => `user-${String(i)}`);
    for (const userId of recipients) await sessionOnB(sessions, userId);
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

describe('Router, contract v1.1: what it holds for moving users', function () {
  it('fails an id-less message whose forward got no answer (it may have been delivered), and holds the ones with ids', async function () {
    const failing: PeerTransport = { post: () => Promise.reject(new Error('connection reset')), forget() {}, async close() {} };
    const { router, sessions, settled } = routerWith({ transport: failing });
    router.onRegistryEvent(NODE_B);
    await sessionOnB(sessions, 'bob');
    router.route({ from: 'alice', to: 'bob', content: 1, id: 'm1', origin: { kind: 'local', cid: 'c' }, size: 10 });
    router.route({ from: 'alice', to: 'bob', content: 2, origin: { kind: 'local', cid: 'c' }, size: 10 });
    await waitFor(() => settled.length === 1 && router.held === 1, { what: 'the forward failed' });
    expect(settled).to.deep.equal(['(no id):RELAY_FAILED']);
    router.stop();
  });

  it('holds for a user this node saw leave, even when the store has lost its moving mark', async function () {
    const { router, settled } = routerWith({ movedAt: (userId) => (userId === 'bob' ? Date.now() : undefined) });
    router.route({ from: 'alice', to: 'bob', content: 1, id: 'm1', origin: { kind: 'local', cid: 'c' }, size: 10 });
    router.route({ from: 'alice', to: 'carol', content: 2, id: 'm2', origin: { kind: 'local', cid: 'c' }, size: 10 });
    await waitFor(() => settled.length === 1, { what: "carol's answer" });
    expect(settled).to.deep.equal(['m2:PEER_UNAVAILABLE']);
    expect(router.held).to.equal(1);
    router.stop();
  });
});
