import { expect } from 'chai';
import { waitFor } from '@messaging-server/testkit';
import type { Envelope } from './envelope.js';
import { HELD_OVERHEAD_BYTES, HeldBudget } from './held-budget.js';
import { MovingHolds, type Whereabouts } from './moving-holds.js';

function envelope(to: string, seq: number): Envelope {
  return { from: 'alice', to, content: seq, id: `m${String(seq)}`, origin: { kind: 'local', cid: 'c' }, size: 10, seq };
}

describe('MovingHolds', function () {
  let where: Whereabouts | undefined;
  let looks: number;
  let inFlight: boolean;
  let released: { envelopes: number[]; where: Whereabouts }[];
  let expired: number[];
  let holds: MovingHolds;
  let budget: HeldBudget;
  /** What one test message (10 bytes) counts in the budget. */
  const COST = 10 + HELD_OVERHEAD_BYTES;

  function make(windowMs = 400, perRecipientMax = 3, totalMessages = 5): MovingHolds {
    budget = new HeldBudget({ totalBytes: totalMessages * COST, perSenderBytes: 1 << 20, perRecipientBytes: 1 << 20 });
    return new MovingHolds({
      windowMs,
      perRecipientMax,
      budget,
      whereNow: async () => {
        looks += 1;
        return where;
      },
      inFlight: () => inFlight,
      release: (envelopes, at) => released.push({ envelopes: envelopes.map((e) => e.seq as number), where: at }),
      expire: (e) => expired.push(e.seq as number),
    });
  }

  beforeEach(() => {
    where = undefined;
    inFlight = false;
    looks = 0;
    released = [];
    expired = [];
    holds = make();
  });
  afterEach(() => {
    holds.stop();
  });

  it('releases a user’s messages in routing order once a look finds it, even when one came back out of order', async () => {
    holds.hold(envelope('bob', 2));
    holds.hold(envelope('bob', 3));
    holds.hold(envelope('bob', 1)); // a message whose forward failed after later ones were routed
    where = { kind: 'remote', nodeId: 'node-b' };
    await waitFor(() => released.length === 1, { what: 'release' });
    expect(released[0]).to.deep.equal({ envelopes: [1, 2, 3], where: { kind: 'remote', nodeId: 'node-b' } });
    expect(holds.size).to.equal(0);
    expect(holds.has('bob')).to.equal(false);
  });

  it('looks once per held user, not once per message, with backoff while the user stays away', async () => {
    for (let i = 0; i < 3; i += 1) holds.hold(envelope('bob', i));
    await new Promise((resolve) => setTimeout(resolve, 300));
    // 50 ms, then doubling (jittered 25–50 %): at most 4 looks in 300 ms, whatever the number of messages.
    expect(looks).to.be.within(1, 4);
  });

  it('answers EXPIRED for every message when the window ends, and no sooner', async () => {
    const started = Date.now();
    holds.hold(envelope('bob', 1));
    holds.hold(envelope('bob', 2));
    await waitFor(() => expired.length === 2, { what: 'expiry' });
    expect(Date.now() - started).to.be.within(390, 600);
    expect(expired).to.deep.equal([1, 2]);
    expect(released).to.deep.equal([]);
  });

  it('counts the window from when the user started moving, not from when the message came', async () => {
    const started = Date.now();
    holds.hold(envelope('bob', 1), Date.now() - 300);
    await waitFor(() => expired.length === 1, { what: 'expiry' });
    expect(Date.now() - started).to.be.within(90, 250);
  });

  it('keeps a re-held message on its first deadline', async () => {
    const first = envelope('bob', 1);
    holds.hold(first);
    const deadline = first.holdUntil;
    holds.resumeHere('bob');
    holds.hold(first);
    expect(first.holdUntil).to.equal(deadline);
  });

  it('refuses beyond its count per recipient and the node’s byte budget, and gives the bytes back', async () => {
    expect([1, 2, 3, 4].map((i) => holds.hold(envelope('bob', i)))).to.deep.equal([true, true, true, false]);
    expect([5, 6, 7].map((i) => holds.hold(envelope('carol', i)))).to.deep.equal([true, true, false]);
    expect(holds.size).to.equal(5);
    expect(budget.total).to.equal(5 * COST);
    holds.resumeHere('bob');
    expect(budget.total).to.equal(2 * COST);
    await waitFor(() => expired.length === 2, { what: "carol's messages expired" });
    expect(budget.total).to.equal(0);
  });

  it('discards what a predicate picks, keeps the rest in order, and gives their bytes back', () => {
    const remote = (to: string, seq: number): Envelope => ({ ...envelope(to, seq), origin: { kind: 'remote', replyTo: 'http://b', cid: 'c' } });
    holds.hold(envelope('bob', 1));
    holds.hold(remote('bob', 2));
    holds.hold(envelope('carol', 3));
    expect(holds.discard((e) => e.origin.kind === 'local')).to.equal(2);
    expect([holds.size, holds.has('bob'), holds.has('carol'), budget.total]).to.deep.equal([1, true, false, COST]);
    holds.resumeHere('bob');
    expect(released).to.deep.equal([{ envelopes: [2], where: { kind: 'self', acked: true } }]);
  });

  it('waits for messages still on their way to the old node before it releases, so none can overtake them', async () => {
    holds.hold(envelope('bob', 2));
    inFlight = true;
    holds.resumeHere('bob');
    where = { kind: 'remote', nodeId: 'node-b' };
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(released).to.deep.equal([]);
    // The earlier message came back from the old node as moving: it joins the hold, then everything goes in order.
    holds.hold(envelope('bob', 1));
    inFlight = false;
    await waitFor(() => released.length === 1, { what: 'release' });
    expect(released[0]?.envelopes).to.deep.equal([1, 2]);
  });

  it('releases at once when the user is welcomed on this node', () => {
    holds.hold(envelope('bob', 1));
    holds.resumeHere('bob');
    expect(released).to.deep.equal([{ envelopes: [1], where: { kind: 'self', acked: true } }]);
  });
});
