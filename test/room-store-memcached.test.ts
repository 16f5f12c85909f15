import { expect } from 'chai';
import { BackendError, MemcachedRoomStore, MemcachedSessionStore } from '@messaging-server/core';
import {
  describeRoomStoreContract,
  memcachedRawGet,
  roomRecord,
  sessionRecord,
  startMemcached,
  uniqueName,
  type MemcachedServer,
} from '@messaging-server/testkit';

describe('MemcachedRoomStore against a real memcached', function () {
  this.timeout(20_000);
  let memcached: MemcachedServer;

  before(async () => {
    memcached = await startMemcached();
  });
  after(async () => {
    await memcached?.stop();
  });

  describeRoomStoreContract('memcached', (prefix) => new MemcachedRoomStore({ servers: [memcached.address], prefix }));

  it('stores a room as JSON under <prefix>room:<R>, as docs/protocol.md documents', async () => {
    const prefix = `${uniqueName('layout')}:`;
    const store = new MemcachedRoomStore({ servers: [memcached.address], prefix });
    try {
      await store.update('standup', () => roomRecord('standup', ['alice', 'bob'], 7, 'node-b'), 30);
      const raw = await memcachedRawGet(memcached.address, `${prefix}room:standup`);
      const value = JSON.parse(raw ?? 'null') as Record<string, unknown>;
      expect(value).to.include({ room: 'standup', seq: 7, home: 'node-b' });
      expect((value['members'] as Array<{ userId: string }>).map((m) => m.userId)).to.deep.equal(['alice', 'bob']);
    } finally {
      await store.close();
    }
  });

  it('shares the session store\'s connection: both stores work over it, and closing them closes it', async () => {
    const prefix = `${uniqueName('shared')}:`;
    const sessions = new MemcachedSessionStore({ servers: [memcached.address], prefix });
    const rooms = new MemcachedRoomStore({ servers: [memcached.address], prefix, connection: sessions.connection });
    await sessions.create(sessionRecord('alice', 'k1'), 30);
    await rooms.update('standup', () => roomRecord('standup', ['alice']), 30);
    expect((await sessions.get('alice'))?.listeningKey).to.equal('k1');
    expect((await rooms.get('standup'))?.members.map((m) => m.userId)).to.deep.equal(['alice']);
    await Promise.all([rooms.close(), sessions.close()]);
    const error = await sessions.get('alice').catch((e: unknown) => e);
    expect((error as BackendError).code).to.equal('SESSION_STORE_UNAVAILABLE');
  });

  it('answers SESSION_STORE_UNAVAILABLE within about a second when memcached is down', async () => {
    const store = new MemcachedRoomStore({ servers: ['127.0.0.1:1'], prefix: 'down:' });
    try {
      const started = Date.now();
      const error = await store.update('R', () => roomRecord('R', ['a']), 30).catch((e: unknown) => e);
      expect(error).to.be.instanceOf(BackendError);
      expect((error as BackendError).code).to.equal('SESSION_STORE_UNAVAILABLE');
      expect(Date.now() - started).to.be.below(1500);
    } finally {
      await store.close();
    }
  });
});
