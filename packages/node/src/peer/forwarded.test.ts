import { expect } from 'chai';
import { asNodeId } from '@messaging-server/protocol';
import { Delivery } from '../delivery.js';
import type { Location } from '../envelope.js';
import { applyOutcomes, deliverForwarded } from './forwarded.js';
import type { LocalDelivery } from './ports.js';

/** The port as node.ts wires it, over a Delivery made of the given stand-ins and a lookup. */
function localOver(parts: { table: object; pending: object; departures: LocalDelivery['departures'] }, locate: () => Promise<Location>): LocalDelivery {
  const table = parts.table as { has(userId: string): boolean };
  const pending = parts.pending as { has(userId: string): boolean };
  const delivery = new Delivery({ ...parts, closed: () => false, countLocal: () => undefined } as never);
  return {
    connected: (userId) => table.has(userId),
    here: (userId) => table.has(userId) || pending.has(userId),
    locate,
    deliverOrHold: (envelope, acked) => delivery.deliverOrHold(envelope, acked),
    departures: parts.departures,
    senderOn: () => Promise.resolve(true),
    recipientMovedFrom: () => Promise.resolve(false),
    peerAddress: () => undefined,
    keptOutcome: () => false,
    senderOf: () => undefined,
  };
}

describe('peer: outcomes reported by other nodes', function () {
  it('counts a message answered `pending` elsewhere as settled once its outcome arrives, open sender or not', function () {
    const acks: string[] = [];
    const sender = { userId: 'alice', unsettled: 2, isOpen: true, sendAck: (id: string) => acks.push(id), sendError: () => undefined };
    const local = { keptOutcome: () => false, senderOf: (cid: string) => (cid === 'c1' ? sender : undefined) } as unknown as LocalDelivery;
    expect(applyOutcomes(local, [{ userId: 'alice', cid: 'c1', id: 'm1', result: 'delivered' }])).to.equal(1);
    expect([sender.unsettled, acks]).to.deep.equal([1, ['m1']]);
    sender.isOpen = false; // closing for a drain: nothing to write, but the drain waits on the count
    expect(applyOutcomes(local, [{ userId: 'alice', cid: 'c1', id: 'm2', result: 'EXPIRED' }])).to.equal(0);
    expect(sender.unsettled).to.equal(0);
    // Another user's report for this connection id changes nothing.
    expect(applyOutcomes(local, [{ userId: 'mallory', cid: 'c1', id: 'm3', result: 'delivered' }])).to.equal(0);
    expect(sender.unsettled).to.equal(0);
  });
});

describe('peer: forwarded messages for users who left this node (v1.1)', function () {
  it('answers `moving` for a user seen leaving here, even when the store has no session for it any more', async function () {
    const left = new Map([['bob', Date.now() - 300]]);
    const local = localOver(
      {
        table: { has: () => false, get: () => undefined, isHandshaking: () => false },
        pending: { has: () => false },
        departures: { has: (userId: string) => left.has(userId), movedAt: (userId: string) => left.get(userId) },
      },
      () => Promise.resolve({ kind: 'none' }),
    );
    const results = await deliverForwarded(local, {
      fromNode: asNodeId('node-a'),
      replyTo: 'http://a',
      messages: [
        { from: 'alice', to: 'bob', content: 1, id: 'm1', cid: 'c' },
        { from: 'alice', to: 'carol', content: 2, id: 'm2', cid: 'c' },
      ],
    });
    expect(results[0]?.status).to.equal('moving');
    expect((results[0] as { movedAgoMs?: number }).movedAgoMs).to.be.within(300, 5000);
    expect(results[1]).to.deep.equal({ status: 'error', code: 'PEER_UNAVAILABLE' });
  });
});

describe("peer: the sender node's budget", function () {
  it('delivers nothing it decides after the sender stopped waiting (a slow lookup took the rest of the budget)', async function () {
    let spent = false;
    const written: unknown[] = [];
    const bob = { userId: 'bob', writeMessage: (e: unknown) => written.push(e) > 0 };
    let connected = false;
    // The store answers late; meanwhile bob connects here and the sender's budget runs out.
    const local = localOver(
      { table: { has: () => connected, get: () => (connected ? bob : undefined), isHandshaking: () => false }, pending: { has: () => false }, departures: undefined },
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        connected = true;
        spent = true;
        return { kind: 'self', acked: true };
      },
    );
    const request = { fromNode: asNodeId('node-a'), replyTo: 'http://a', budgetMs: 10, messages: [{ from: 'alice', to: 'bob', content: 1, id: 'm1', cid: 'c' }] };
    expect(await deliverForwarded(local, request, () => spent)).to.deep.equal([{ status: 'error', code: 'RELAY_FAILED' }]);
    expect(written).to.deep.equal([]);
    spent = false;
    expect(await deliverForwarded(local, request, () => spent)).to.deep.equal([{ status: 'delivered' }]);
    expect(written).to.have.length(1);
  });
});
