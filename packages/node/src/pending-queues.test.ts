import { expect } from 'chai';
import type { Envelope } from './envelope.js';
import { PendingQueues } from './pending-queues.js';
import { waitFor } from '@messaging-server/testkit';

function envelope(to: string, content: number): Envelope {
  return { from: 'alice', to, content, id: `m${String(content)}`, origin: { kind: 'local', cid: 'c' }, size: 10 };
}

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
