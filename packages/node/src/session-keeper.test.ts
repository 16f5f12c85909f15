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
    const sessions = new MemorySessionStore();
    const replaced: string[] = [];
    const keeper = new SessionKeeper({ sessions, nodeId: 'node-a', sessionTtlSeconds: 30, log: silentLogger, onReplaced: (c) => replaced.push(c.userId) });
    const ours = connection('ours', 'k1');
    const lost = connection('lost', 'k2');
    const taken = connection('taken', 'k3');
    await sessions.put(ours.record, 5);
    await sessions.put({ ...taken.record, listeningKey: 'newer' }, 5);
    keeper.tick([ours, lost, taken]);
    await waitFor(() => [ours, lost, taken].every((c) => !c.reasserting && c.nextReassertAt > 0), { what: 'one round' });
    expect(await sessions.get('lost')).to.deep.include({ listeningKey: 'k2', acked: true });
    expect((await sessions.get('taken'))?.listeningKey).to.equal('newer');
    expect(replaced).to.deep.equal(['taken']);
    // Next time is a third of the TTL away, not sooner.
    expect(ours.nextReassertAt - Date.now()).to.be.within(9000, 10_000);
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
    keeper.tick(many);
    await waitFor(() => many.every((c) => !c.reasserting && c.nextReassertAt > 0), { what: 'all attempted' });
    expect(maxInFlight).to.equal(4);
    // TTL 90 s: interval 30 s; a failure retries after min(interval / 3, 5 s) = 5 s.
    for (const c of many) expect(c.nextReassertAt - Date.now()).to.be.within(4000, 5000);
  });
});
