import { expect } from 'chai';
import { MemorySessionStore, silentLogger, type PeerTransport } from '@messaging-server/core';
import { waitFor } from '@messaging-server/testkit';
import type { DeliverRequest } from './internal-wire.js';
import { HeldBudget } from './held-budget.js';
import { PEER_LANES, Router } from './router.js';

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
      resumeWindowMs: 0,
      holdMaxPerRecipient: 256,
      holdBudget: new HeldBudget({ totalBytes: 1 << 26, perSenderBytes: 1 << 20, perRecipientBytes: 1 << 20 }),
      deliverIfConnected: () => undefined,
      deliverOrHold: () => 'PEER_UNAVAILABLE',
      isHereOrComing: () => false,
      movedAt: () => undefined,
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
