import { connect } from 'node:net';
import { expect } from 'chai';
import { BackendError, MemcachedRoomStore } from '@messaging-server/core';
import { describeRoomStoreContract, roomRecord, startMemcached, uniqueName, type MemcachedServer } from '@messaging-server/testkit';

/** The raw value of `key` over memcached's text protocol, as an operator would read it. */
async function rawGet(address: string, key: string): Promise<string | undefined> {
  const [host, port] = address.split(':') as [string, string];
  const socket = connect(Number(port), host);
  let data = '';
  socket.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', (chunk: string) => {
      data += chunk;
      if (data.endsWith('END\r\n')) resolve();
    });
    socket.write(`get ${key}\r\n`);
  });
  socket.destroy();
  const match = /^VALUE \S+ \d+ \d+\r\n([\s\S]*)\r\nEND\r\n$/.exec(data);
  return match?.[1];
}

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
      const raw = await rawGet(memcached.address, `${prefix}room:standup`);
      const value = JSON.parse(raw ?? 'null') as Record<string, unknown>;
      expect(value).to.include({ room: 'standup', seq: 7, home: 'node-b' });
      expect((value['members'] as Array<{ userId: string }>).map((m) => m.userId)).to.deep.equal(['alice', 'bob']);
    } finally {
      await store.close();
    }
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
