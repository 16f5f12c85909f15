import { connect, createServer, type Server, type Socket } from 'node:net';
import { expect } from 'chai';
import { BackendError, MemcachedSessionStore, type SessionStore } from '@messaging-server/core';
import {
  describeSessionStoreContract,
  memcachedRawGet,
  sessionRecord,
  startMemcached,
  uniqueName,
  type MemcachedServer,
} from '@messaging-server/testkit';

const BUDGET_MS = 1500;

/** Runs every SessionStore call and returns, per call, how it failed and how long it took. */
async function everyCallFails(store: SessionStore): Promise<Array<{ op: string; error: unknown; ms: number }>> {
  const calls: Record<string, () => Promise<unknown>> = {
    get: () => store.get('alice'),
    create: () => store.create(sessionRecord('alice', 'k1'), 30),
    put: () => store.put(sessionRecord('alice', 'k1'), 30),
    touch: () => store.touch('alice', 30),
    deleteIfMatches: () => store.deleteIfMatches('alice', 'k1'),
  };
  // Concurrently, as a busy gateway would issue them.
  return Promise.all(
    Object.entries(calls).map(async ([op, call]) => {
      const started = Date.now();
      try {
        await call();
        return { op, error: undefined, ms: Date.now() - started };
      } catch (error) {
        return { op, error, ms: Date.now() - started };
      }
    }),
  );
}

function expectAllUnavailable(results: Array<{ op: string; error: unknown; ms: number }>): void {
  expect(results).to.have.length(5);
  for (const { op, error, ms } of results) {
    expect(error, op).to.be.instanceOf(BackendError);
    expect((error as BackendError).code, op).to.equal('SESSION_STORE_UNAVAILABLE');
    expect(ms, `${op} took ${String(ms)} ms`).to.be.below(BUDGET_MS);
  }
}

describe('MemcachedSessionStore against a real memcached', function () {
  this.timeout(20_000);
  let memcached: MemcachedServer;

  before(async () => {
    memcached = await startMemcached();
  });
  after(async () => {
    await memcached?.stop();
  });

  describeSessionStoreContract('memcached', (prefix) => new MemcachedSessionStore({ servers: [memcached.address], prefix }));

  it('refuses a prefix that cannot start a memcached key, and an empty server list', () => {
    expect(() => new MemcachedSessionStore({ servers: [memcached.address], prefix: 'has space:' })).to.throw(TypeError);
    expect(() => new MemcachedSessionStore({ servers: [memcached.address], prefix: 'x'.repeat(101) })).to.throw(TypeError);
    expect(() => new MemcachedSessionStore({ servers: [], prefix: 'ms:' })).to.throw(TypeError);
  });

  it('rejects every call after close', async () => {
    const store = new MemcachedSessionStore({ servers: [memcached.address], prefix: `${uniqueName('closed')}:` });
    await store.put(sessionRecord('alice', 'k1'), 30);
    await store.close();
    const error = await store.get('alice').catch((e: unknown) => e);
    expect(error).to.be.instanceOf(BackendError);
    expect((error as BackendError).code).to.equal('SESSION_STORE_UNAVAILABLE');
  });

  describe('layout', () => {
    let store: MemcachedSessionStore;
    let prefix: string;
    beforeEach(() => {
      prefix = `${uniqueName('layout')}:`;
      store = new MemcachedSessionStore({ servers: [memcached.address], prefix });
    });
    afterEach(() => store.close());

    it('stores the record as JSON under <prefix>session:<userId>', async () => {
      const record = sessionRecord('a.b~c@d_e-F9', 'k1', { acked: true });
      await store.put(record, 30);
      const raw = await memcachedRawGet(memcached.address, `${prefix}session:a.b~c@d_e-F9`);
      expect(raw).to.be.a('string');
      expect(JSON.parse(raw ?? '')).to.deep.equal(record);
    });

    it('keeps a ttl above 30 days relative (memcached would read it as a 1970 timestamp)', async () => {
      await store.put(sessionRecord('alice', 'k1'), 40 * 24 * 3600);
      expect((await store.get('alice'))?.listeningKey).to.equal('k1');
      expect(await store.touch('alice', 365 * 24 * 3600)).to.equal(true);
      expect((await store.get('alice'))?.listeningKey).to.equal('k1');
    });

    it('treats an unreadable value as no session', async () => {
      const socket = connect(memcached.port, '127.0.0.1');
      const key = `${prefix}session:mallory`;
      await new Promise<void>((resolve) => {
        socket.once('data', () => resolve());
        socket.write(`set ${key} 0 30 8\r\nnot json\r\n`);
      });
      socket.destroy();
      expect(await store.get('mallory')).to.equal(undefined);
      expect(await store.deleteIfMatches('mallory', 'anything')).to.equal(false);
    });
  });

  describe('outages', () => {
    let own: MemcachedServer;
    let store: MemcachedSessionStore;
    beforeEach(async () => {
      own = await startMemcached();
      store = new MemcachedSessionStore({ servers: [own.address], prefix: `${uniqueName('outage')}:` });
    });
    afterEach(async () => {
      await store.close();
      await own.stop();
    });

    it('fails every call within 1.5 s while memcached is stopped, and the same client works after a restart', async () => {
      await store.put(sessionRecord('alice', 'k1'), 30);
      await own.stop();
      expectAllUnavailable(await everyCallFails(store));
      // Again: a second round must not hang on state left by the first.
      expectAllUnavailable(await everyCallFails(store));

      await own.restart();
      expect(await store.get('alice'), 'memcached comes back empty').to.equal(undefined);
      expect(await store.create(sessionRecord('alice', 'k2'), 30)).to.equal(true);
      expect((await store.get('alice'))?.listeningKey).to.equal('k2');
    });

    it('recovers at the first call after memcached restarted underneath an idle connection', async () => {
      await store.put(sessionRecord('alice', 'k1'), 30);
      await own.restart();
      expect(await store.get('alice')).to.equal(undefined);
      await store.put(sessionRecord('alice', 'k2'), 30);
      expect((await store.get('alice'))?.listeningKey).to.equal('k2');
    });

    it('settles every call within 1.5 s while memcached restarts under steady load, then works', async () => {
      let stop = false;
      const slowest = { ms: 0 };
      const failures = new Set<string>();
      const load = (async () => {
        for (let i = 0; !stop; i++) {
          const started = Date.now();
          await Promise.all([
            store.put(sessionRecord(`u${String(i % 10)}`, `k${String(i)}`), 30),
            store.get(`u${String(i % 10)}`),
            store.deleteIfMatches(`u${String((i + 5) % 10)}`, 'nope'),
          ]).catch((error: unknown) => {
            failures.add(error instanceof BackendError ? error.code : String(error));
          });
          slowest.ms = Math.max(slowest.ms, Date.now() - started);
        }
      })();
      await own.restart();
      await own.restart();
      stop = true;
      await load;
      expect([...failures].filter((code) => code !== 'SESSION_STORE_UNAVAILABLE'), 'failure kinds').to.deep.equal([]);
      expect(slowest.ms).to.be.below(BUDGET_MS);
      await store.put(sessionRecord('alice', 'after'), 30);
      expect((await store.get('alice'))?.listeningKey).to.equal('after');
    });

    it('fails over a SIGKILLed memcached as fast as over a stopped one', async () => {
      await store.put(sessionRecord('alice', 'k1'), 30);
      await own.kill();
      expectAllUnavailable(await everyCallFails(store));
    });
  });

  describe('a server that accepts connections and never answers', () => {
    let silent: Server;
    const sockets = new Set<Socket>();
    let address: string;
    before(async () => {
      silent = createServer((socket) => {
        sockets.add(socket);
        socket.on('data', () => {});
        socket.on('close', () => sockets.delete(socket));
      });
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const bound = silent.address();
      address = `127.0.0.1:${String(typeof bound === 'object' && bound ? bound.port : 0)}`;
    });
    after(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });

    it('fails every call within 1.5 s, again and again', async () => {
      const store = new MemcachedSessionStore({ servers: [address], prefix: 'silent:' });
      try {
        expectAllUnavailable(await everyCallFails(store));
        expectAllUnavailable(await everyCallFails(store));
        expect(sockets.size, 'the client reached the silent server').to.be.greaterThan(0);
      } finally {
        await store.close();
      }
    });

    it('honours a shorter operationTimeoutMs', async () => {
      const store = new MemcachedSessionStore({ servers: [address], prefix: 'silent:', operationTimeoutMs: 200 });
      try {
        const started = Date.now();
        const error = await store.get('alice').catch((e: unknown) => e);
        expect(error).to.be.instanceOf(BackendError);
        expect(Date.now() - started).to.be.below(450);
      } finally {
        await store.close();
      }
    });
  });
});
