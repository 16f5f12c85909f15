import { expect } from 'chai';
import { describeSessionStoreContract, sessionRecord } from '@messaging-server/testkit';
import { MemorySessionStore } from './memory-session-store.js';

describeSessionStoreContract('memory', () => new MemorySessionStore());

describe('MemorySessionStore with a controlled clock', () => {
  let now: number;
  let store: MemorySessionStore;
  beforeEach(() => {
    now = 1_000_000;
    store = new MemorySessionStore({ now: () => now });
  });

  it('expires a record exactly when its ttl has passed', async () => {
    await store.put(sessionRecord('alice', 'k1'), 30);
    now += 29_999;
    expect(await store.get('alice')).to.not.equal(undefined);
    now += 1;
    expect(await store.get('alice')).to.equal(undefined);
  });

  it('touch restarts the ttl from now', async () => {
    await store.put(sessionRecord('alice', 'k1'), 10);
    now += 9_000;
    expect(await store.touch('alice', 10)).to.equal(true);
    now += 9_000;
    expect(await store.get('alice')).to.not.equal(undefined);
    now += 1_000;
    expect(await store.get('alice')).to.equal(undefined);
  });

  it('rounds a fractional ttl up to whole seconds, like memcached', async () => {
    await store.put(sessionRecord('alice', 'k1'), 0.2);
    now += 999;
    expect(await store.get('alice')).to.not.equal(undefined);
    now += 1;
    expect(await store.get('alice')).to.equal(undefined);
  });

  it('forgets expired records of users that never come back', async () => {
    for (let i = 0; i < 100; i++) await store.put(sessionRecord(`u${String(i)}`, 'k'), 1);
    expect(store.size).to.equal(100);
    now += 1_000;
    for (let i = 0; i < 1024; i++) await store.put(sessionRecord(`v${String(i)}`, 'k'), 60);
    // The periodic sweep ran on a write, without anyone reading the u* records.
    expect((store as unknown as { entries: Map<string, unknown> }).entries.size).to.equal(1024);
  });
});
