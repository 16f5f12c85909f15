import { expect } from 'chai';
import type { Envelope } from './envelope.js';
import { HELD_OVERHEAD_BYTES, HeldBudget } from './held-budget.js';
import { PendingQueues } from './pending-queues.js';
import { waitFor } from '@messaging-server/testkit';

function envelope(to: string, content: number): Envelope {
  return { from: 'alice', to, content, id: `m${String(content)}`, origin: { kind: 'local', cid: 'c' }, size: 10 };
}

describe('PendingQueues', function () {
  const unlimited = (): HeldBudget => new HeldBudget({ perRecipientBytes: 1 << 30, perSenderBytes: 1 << 30, totalBytes: 1 << 30 });
  const cost = 10 + HELD_OVERHEAD_BYTES;

  it('caps the count per recipient, and bytes per node', function () {
    const budget = new HeldBudget({ perRecipientBytes: 1 << 30, perSenderBytes: 1 << 30, totalBytes: 3 * cost });
    const queues = new PendingQueues(2, budget, 10_000, () => undefined);
    expect([queues.add(envelope('bob', 1)), queues.add(envelope('bob', 2)), queues.add(envelope('bob', 3))]).to.deep.equal(['held', 'held', 'full']);
    expect([queues.add(envelope('carol', 4)), queues.add(envelope('dave', 5))]).to.deep.equal(['held', 'full']);
    expect(queues.take('bob').map((e) => e.content)).to.deep.equal([1, 2]);
    expect(queues.size).to.equal(1);
    expect(budget.total).to.equal(cost);
    queues.close();
    expect(budget.total).to.equal(0);
  });

  it('releases only its own bytes when it closes: the budget it shares with the moving holds keeps theirs', function () {
    const budget = unlimited();
    const queues = new PendingQueues(10, budget, 10_000, () => undefined);
    expect(budget.reserve('carol', 'dave', 100)).to.equal(true); // a message held for a moving user
    queues.add(envelope('bob', 1));
    queues.add(envelope('bob', 2));
    queues.close();
    expect(queues.size).to.equal(0);
    expect(budget.total).to.equal(100);
    budget.release('carol', 'dave', 100);
    expect(budget.total).to.equal(0);
  });

  it('caps bytes per sender and per recipient, so one of either cannot take the node', function () {
    const budget = new HeldBudget({ perRecipientBytes: 2 * cost, perSenderBytes: 3 * cost, totalBytes: 100 * cost });
    const queues = new PendingQueues(100, budget, 10_000, () => undefined);
    const from = (sender: string, to: string, n: number): Envelope => ({ ...envelope(to, n), from: sender });
    expect([1, 2, 3].map((n) => queues.add(from('mallory', `ghost${String(n)}`, n)))).to.deep.equal(['held', 'held', 'held']);
    expect(queues.add(from('mallory', 'ghost4', 4))).to.equal('full');
    expect(queues.add(from('alice', 'bob', 5))).to.equal('held');
    expect(queues.add(from('carol', 'bob', 6))).to.equal('held');
    expect(queues.add(from('dave', 'bob', 7))).to.equal('full');
    queues.take('ghost1');
    expect(budget.heldFrom('mallory')).to.equal(2 * cost);
    expect(queues.add(from('mallory', 'ghost4', 8))).to.equal('held');
    queues.close();
  });

  it('measures a forwarded message by its content', function () {
    const budget = unlimited();
    const queues = new PendingQueues(10, budget, 10_000, () => undefined);
    queues.add({ ...envelope('bob', 1), content: 'x'.repeat(1000), size: 0 });
    expect(budget.heldFor('bob')).to.equal(1002 + HELD_OVERHEAD_BYTES);
    queues.close();
  });

  it('expires messages after the TTL, in order', async function () {
    const expired: Envelope[] = [];
    const budget = unlimited();
    const queues = new PendingQueues(10, budget, 50, (e) => expired.push(e));
    queues.add(envelope('bob', 1));
    queues.add(envelope('carol', 2));
    queues.add(envelope('bob', 3));
    await waitFor(() => expired.length === 3, { what: 'three expired' });
    expect(expired.map((e) => e.content)).to.deep.equal([1, 3, 2]);
    expect(queues.size).to.equal(0);
    expect(queues.has('bob')).to.equal(false);
    expect(budget.total).to.equal(0);
  });
});
