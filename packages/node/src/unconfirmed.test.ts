import { expect } from 'chai';
import type { Envelope } from './envelope.js';
import { KeptCopies } from './kept-copies.js';
import { HeldBudget } from './held-budget.js';
import { parseDeliverResponse, parseOutcomes } from './peer/internal-wire.js';
import { Unconfirmed } from './unconfirmed.js';

const envelope = (id: string | undefined, seq = 0, cid = 'c1'): Envelope => {
  const e: Envelope = { from: 'alice', to: 'bob', content: { id: id ?? null }, origin: { kind: 'local', cid }, size: 40, seq };
  if (id !== undefined) e.id = id;
  return e;
};

describe('Unconfirmed (v1.2 receipts of one connection)', function () {
  it('numbers writes from 1, and a cumulative receipt takes what it covers, oldest first, id-less ones included', function () {
    const log = new Unconfirmed(10, () => undefined);
    expect(log.nextSeq).to.equal(1);
    log.written(envelope('m1'), 1);
    log.written(undefined, 0);
    log.written(envelope('m3'), 1);
    expect([log.nextSeq, log.count]).to.deep.equal([4, 3]);
    expect(log.confirm(2).map((w) => [w.seq, w.envelope?.id])).to.deep.equal([
      [1, 'm1'],
      [2, undefined],
    ]);
    expect(log.confirm(2), 'a receipt already covered').to.deep.equal([]);
    expect(log.confirm(99).map((w) => w.seq), 'a seq never written confirms only what was').to.deep.equal([3]);
    log.written(envelope('m4'), 1);
    expect(log.takeAll().map((w) => w.seq)).to.deep.equal([4]);
    log.takeAll();
  });

  it('calls stalled once any message stays unconfirmed for the stall time, and not while receipts keep up', async function () {
    let stalled = 0;
    const log = new Unconfirmed(10, () => (stalled += 1), 60);
    log.written(envelope('m1'), 0);
    await new Promise((resolve) => setTimeout(resolve, 30));
    log.confirm(1);
    log.written(envelope('m2'), 0);
    await new Promise((resolve) => setTimeout(resolve, 45));
    expect(stalled, 'm2 is 45 ms old').to.equal(0);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(stalled).to.equal(1);
    log.takeAll();
  });

  it('calls stalled when it stays over its threshold for the grace, not when a receipt brings it back under', async function () {
    let stalled = 0;
    const quick = new Unconfirmed(2, () => (stalled += 1));
    for (const id of ['a', 'b', 'c']) quick.written(envelope(id), 0);
    quick.confirm(3);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(stalled).to.equal(0);
    for (const id of ['d', 'e', 'f']) quick.written(envelope(id), 0);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(stalled).to.equal(1);
    quick.takeAll();
  });
});

describe('KeptCopies (v1.2, on the sender node)', function () {
  it('keeps forwarded copies within the held budget until their report, and gives a failed node’s back in order', function () {
    const budget = new HeldBudget({ perRecipientBytes: 1 << 20, perSenderBytes: 1 << 20, totalBytes: 1 << 20 });
    const kept = new KeptCopies(budget);
    expect(kept.keep('node-b', envelope('m2', 2))).to.equal(true);
    expect(kept.keep('node-b', envelope('m1', 1))).to.equal(true);
    expect(kept.keep('node-c', envelope('m3', 3))).to.equal(true);
    expect(kept.keep('node-b', envelope('m1', 1)), 'the same (cid, id) twice').to.equal(false);
    expect(kept.keep('node-b', envelope(undefined, 4)), 'id-less').to.equal(false);
    expect(budget.total).to.be.greaterThan(0);
    expect(kept.take('c1', 'm3')?.id).to.equal('m3');
    expect(kept.take('c1', 'm3')).to.equal(undefined);
    expect(kept.takeFor('node-b').map((e) => e.id)).to.deep.equal(['m1', 'm2']);
    expect([kept.size, budget.total]).to.deep.equal([0, 0]);
    const tight = new KeptCopies(new HeldBudget({ perRecipientBytes: 100, perSenderBytes: 100, totalBytes: 100 }));
    expect(tight.keep('node-b', envelope('big')), 'over the held budget').to.equal(false);
  });

  it('holds a report that overtook its delivery answer for that answer', function () {
    const kept = new KeptCopies(new HeldBudget({ perRecipientBytes: 1 << 20, perSenderBytes: 1 << 20, totalBytes: 1 << 20 }));
    kept.noteEarly({ userId: 'alice', cid: 'c1', id: 'm1', result: 'delivered', kept: true });
    expect(kept.takeEarly(envelope('m2'))).to.equal(undefined);
    expect(kept.takeEarly(envelope('m1'))?.result).to.equal('delivered');
    expect(kept.takeEarly(envelope('m1'))).to.equal(undefined);
    kept.noteEarly({ userId: 'alice', cid: 'c1', id: 'm9', result: 'delivered', kept: true }, 0);
    expect(kept.takeEarly(envelope('m9'), 10_000), 'stale').to.equal(undefined);
  });

  it('reads unconfirmed answers and kept / redeliver reports off the internal wire', function () {
    expect(parseDeliverResponse({ results: [{ status: 'pending', unconfirmed: true }, { status: 'pending' }] }, 2)).to.deep.equal([
      { status: 'pending', unconfirmed: true },
      { status: 'pending' },
    ]);
    const report = { userId: 'alice', cid: 'c', id: 'm', result: 'RELAY_FAILED', kept: true, redeliver: true };
    expect(parseOutcomes({ outcomes: [report] })).to.deep.equal([report]);
  });
});
