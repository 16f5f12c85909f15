import { expect } from 'chai';
import { MemorySessionStore, silentLogger } from '@messaging-server/core';
import type { SessionRecord } from '@messaging-server/protocol';
import { waitFor } from '@messaging-server/testkit';
import { SessionKeeper, type KeptConnection } from './session-keeper.js';

function connection(userId: string, key: string): KeptConnection & { record: SessionRecord } {
  return {
    userId,
    key,
    state: 'open',
    nextReassertAt: 0,
    reasserting: false,
    record: { userId, listeningAddress: 'http://n/ws', listeningKey: key, acked: true, nodeId: 'node-a', createdAt: new Date().toISOString() },
  };
}

describe('SessionKeeper', function () {
  it('touches its own sessions, writes back missing ones, and reports replaced ones', async function () {
    // The store's clock runs ahead on demand, so "still there after its old TTL" is shown without waiting for it.
    let ahead = 0;
    const sessions = new MemorySessionStore({ now: () => Date.now() + ahead });
    const replaced: string[] = [];
    const keeper = new SessionKeeper({ sessions, nodeId: 'node-a', sessionTtlSeconds: 30, log: silentLogger, onReplaced: (c) => replaced.push(c.userId) });
    const ours = connection('ours', 'k1');
    const lost = connection('lost', 'k2');
    const taken = connection('taken', 'k3');
    await sessions.put(ours.record, 5);
    await sessions.put({ ...taken.record, listeningKey: 'newer' }, 5);
    const before = Date.now();
    keeper.tick([ours, lost, taken]);
    await waitFor(() => [ours, lost, taken].every((c) => !c.reasserting && c.nextReassertAt > 0), { what: 'one round' });
    const after = Date.now();
    expect(await sessions.get('lost')).to.deep.include({ listeningKey: 'k2', acked: true });
    expect((await sessions.get('taken'))?.listeningKey).to.equal('newer');
    expect(replaced).to.deep.equal(['taken']);
    // Touched: 6 s on, past the 5 s it was written with, our session is still there with its key; the other
    // node's session, which the keeper left alone, has expired.
    ahead = 6000;
    expect(await sessions.get('ours')).to.deep.include({ listeningKey: 'k1', acked: true });
    expect(await sessions.get('taken')).to.equal(undefined);
    // Next time is a third of the TTL after the round, not sooner.
    for (const c of [ours, lost, taken]) expect(c.nextReassertAt).to.be.within(before + 10_000, after + 10_000);
  });

  it('after one missing record (the store restarted empty), writes back every session at the next tick, not each in its turn', async function () {
    const sessions = new MemorySessionStore();
    const keeper = new SessionKeeper({ sessions, nodeId: 'node-a', sessionTtlSeconds: 30, log: silentLogger, onReplaced: () => {} });
    const first = connection('first', 'k1');
    const later = Array.from({ length: 5 }, (_, i) => connection(`later${String(i)}`, `k${String(i + 2)}`));
    for (const c of later) c.nextReassertAt = Date.now() + 60_000; // not due for a minute
    keeper.tick([first, ...later]);
    await waitFor(() => !first.reasserting && first.nextReassertAt > 0 && !later.some((c) => c.reasserting), { what: 'the first round' });
    expect(await sessions.get('first')).to.deep.include({ listeningKey: 'k1' });
    expect(await sessions.get('later0'), 'not due, not touched yet').to.equal(undefined);
    keeper.tick([first, ...later]);
    await waitFor(async () => (await Promise.all(later.map((c) => sessions.get(c.userId)))).every((r) => r !== undefined), { what: 'every session written back' });
    keeper.tick([first, ...later]);
    expect(later.every((c) => !c.reasserting), 'one refill, not a loop').to.equal(true);
  });

  it('keeps at most `concurrency` store calls in flight and retries a failure well inside the interval', async function () {
    let inFlight = 0;
    let maxInFlight = 0;
    const failing = new MemorySessionStore();
    failing.get = async () => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 10));
      inFlight -= 1;
      throw new Error('memcached down');
    };
    const keeper = new SessionKeeper({ sessions: failing, nodeId: 'node-a', sessionTtlSeconds: 90, log: silentLogger, onReplaced: () => {}, concurrency: 4 });
    const many = Array.from({ length: 20 }, (_, i) => connection(`u${String(i)}`, `k${String(i)}`));
    const before = Date.now();
    keeper.tick(many);
    await waitFor(() => many.every((c) => !c.reasserting && c.nextReassertAt > 0), { what: 'all attempted' });
    const after = Date.now();
    expect(maxInFlight).to.equal(4);
    // TTL 90 s: interval 30 s; a failure retries after min(interval / 3, 5 s) = 5 s after it failed.
    for (const c of many) expect(c.nextReassertAt).to.be.within(before + 5000, after + 5000);
  });
});
