import { expect } from 'chai';
import { MemorySessionStore, silentLogger } from '@messaging-server/core';
import { SenderCheck } from './sender-check.js';

function on(sessions: MemorySessionStore, userId: string, nodeId: string): Promise<void> {
  return sessions.put({ userId, listeningAddress: `http://${nodeId}/ws`, listeningKey: 'k', acked: true, nodeId, createdAt: new Date().toISOString() }, 600);
}

describe('SenderCheck: a node speaks for its own users, and for a minute for those that just left it', () => {
  it('accepts the node that holds the session, and refuses one that never held it', async () => {
    const sessions = new MemorySessionStore();
    const check = new SenderCheck(sessions, silentLogger);
    await on(sessions, 'alice', 'n1');
    expect(await check.isOn('alice', 'n1')).to.equal(true);
    expect(await check.isOn('alice', 'n2')).to.equal(false);
    expect(await check.isOn('nobody', 'n1'), 'no record, never confirmed').to.equal(false);
  });

  // Found by `make chaos`: a sender that moved on got FORBIDDEN_SENDER for what its old node still forwarded.
  it('accepts what the old node forwards for 60 s after the sender moved from it, then refuses it', async () => {
    const sessions = new MemorySessionStore();
    const check = new SenderCheck(sessions, silentLogger);
    const t0 = Date.now();
    await on(sessions, 'alice', 'n1');
    expect(await check.isOn('alice', 'n1', t0)).to.equal(true);
    await on(sessions, 'alice', 'n2');
    expect(await check.isOn('alice', 'n2', t0 + 1000)).to.equal(true);
    expect(await check.isOn('alice', 'n1', t0 + 20_000), 'moved 20 s ago').to.equal(true);
    expect(await check.isOn('alice', 'n1', t0 + 61_000), 'moved 61 s ago').to.equal(false);
    expect(await check.isOn('alice', 'n3', t0 + 1000), 'a node alice was never on').to.equal(false);
  });

  it('stands on a confirmation for 60 s while the store has no record (memcached restarted empty)', async () => {
    const sessions = new MemorySessionStore();
    const check = new SenderCheck(sessions, silentLogger);
    const t0 = Date.now();
    await on(sessions, 'alice', 'n1');
    expect(await check.isOn('alice', 'n1', t0)).to.equal(true);
    await sessions.deleteIfMatches('alice', 'k');
    expect(await check.isOn('alice', 'n1', t0 + 30_000)).to.equal(true);
    expect(await check.isOn('alice', 'n1', t0 + 61_000)).to.equal(false);
  });
});
