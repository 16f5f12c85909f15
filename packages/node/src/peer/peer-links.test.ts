import { expect } from 'chai';
import { asNodeId } from '@messaging-server/protocol';
import { silentLogger, type PeerTransport } from '@messaging-server/core';
import { waitFor } from '@messaging-server/testkit';
import type { Envelope } from '../envelope.js';
import type { DeliverRequest } from './internal-wire.js';
import { OutcomeLinks } from './outcome-links.js';
import { PeerLinks } from './peer-links.js';

describe('PeerLinks when peers leave', function () {
  it('drops links that were busy when their peer left once they are idle, at the next departure', async function () {
    const members = new Map([
      ['node-b', 'http://b'],
      ['node-c', 'http://c'],
    ]);
    const held: (() => void)[] = [];
    const transport: PeerTransport = {
      async post<T>(peer: string, _path: string, body: unknown): Promise<T> {
        // node-b answers only when the test lets it; node-c at once.
        if (peer === 'http://b') await new Promise<void>((resolve) => held.push(resolve));
        return { results: (body as DeliverRequest).messages.map(() => ({ status: 'delivered' })) } as T;
      },
      forget() {},
      async close() {},
    };
    const answered: string[] = [];
    const metrics = { hot: { relayedLocal: 0, relayedRemote: 0, acks: 0 }, relayLatency: { observe() {} } } as never;
    const outcomes = new OutcomeLinks({ transport, log: silentLogger });
    const links = new PeerLinks({ nodeId: asNodeId('node-a'), replyTo: 'http://a', transport, log: silentLogger, metrics, outcomes }, {
      addressOf: (peerId) => members.get(peerId),
      isMemberAddress: (address) => [...members.values()].includes(address),
      answered: (_peerId, envelope, result) => answered.push(`${envelope.to}:${result.status}`),
      unanswered: () => undefined,
      gone: () => undefined,
      refused: () => undefined,
    });
    const envelope = (to: string): Envelope => ({ from: 'alice', to, content: 'hi', id: to, origin: { kind: 'local', cid: 'c1' }, size: 2 });

    links.forward(asNodeId('node-b'), envelope('bob'));
    links.forward(asNodeId('node-c'), envelope('carol'));
    links.report('http://b', { userId: 'bob', cid: 'c2', id: 'earlier', result: 'delivered' });
    await waitFor(() => held.length === 2 && answered.includes('carol:delivered'), { what: 'bob and the report in flight, carol answered' });
    expect(links.linkCount).to.equal(3);

    // node-b leaves while its lane and the outcome link to it wait for answers: both stay until they are answered.
    members.delete('node-b');
    links.forget(asNodeId('node-b'), 'http://b');
    expect(links.linkCount).to.equal(3);
    held.splice(0).forEach((release) => release());
    await waitFor(() => answered.includes('bob:delivered') && links.idle, { what: 'bob answered' });

    // The next departure sweeps both, with node-c's own lane.
    members.delete('node-c');
    links.forget(asNodeId('node-c'), 'http://c');
    expect(links.linkCount).to.equal(0);
  });
});
