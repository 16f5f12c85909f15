// Issue 28, stores with credentials: etcd with authentication on (a user whose role may use one prefix) and memcached
// with SASL, real servers. The registry and session-store contracts hold with credentials; a client without them, or
// with a wrong password, is refused; a whole cluster of real processes relays with them. Before, neither store asked
// a client for anything: any pod that reached them could forge nodes and sessions.
import { expect } from 'chai';
import { EtcdRegistry, isBackendError, MemcachedSessionStore, silentLogger } from '@messaging-server/core';
import {
  abandonRegistration,
  describeRegistryContract,
  describeSessionStoreContract,
  nodeRecord,
  requestSession,
  sessionRecord,
  startCluster,
  startEtcd,
  startMemcached,
  uniqueName,
  uniquePrefix,
  TestSocket,
  type EtcdServer,
  type LocalCluster,
  type MemcachedServer,
} from '@messaging-server/testkit';

const ETCD_USER = { username: 'messaging-server', password: 'etcd-test-password-3f9a1c' };
const MEMCACHED_USER = { username: 'messaging-server', password: 'memcached-test-password-7d2e4b' };
const TTL_SECONDS = 2;

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a refusal');
}

describe('stores with credentials: etcd users and roles, memcached SASL (issue 28)', function () {
  this.timeout(60_000);
  let etcd: EtcdServer;
  let memcached: MemcachedServer;

  before(async function () {
    this.timeout(30_000);
    [etcd, memcached] = await Promise.all([startEtcd({ user: { ...ETCD_USER, prefix: '/test/' } }), startMemcached({ sasl: MEMCACHED_USER })]);
  });
  after(async () => {
    await Promise.all([etcd?.remove(), memcached?.stop()]);
  });

  describeRegistryContract('etcd with authentication', async (prefix) => {
    const registry = new EtcdRegistry({ endpoints: [etcd.endpoint], prefix, leaseTtlSeconds: TTL_SECONDS, dialTimeoutMs: 1000, credentials: ETCD_USER });
    return {
      registry,
      leaseTtlSeconds: TTL_SECONDS,
      crash: (registration) => abandonRegistration(registry, registration),
      teardown: () => registry.close(),
    };
  });

  describeSessionStoreContract('memcached with SASL', (prefix) => new MemcachedSessionStore({ servers: [memcached.address], prefix, credentials: MEMCACHED_USER }));

  it('refuses an etcd client without credentials, with a wrong password, or outside its prefix', async () => {
    const prefix = uniquePrefix('etcd-refused');
    const owner = new EtcdRegistry({ endpoints: [etcd.endpoint], prefix, leaseTtlSeconds: 5, credentials: ETCD_USER });
    const clients = [
      new EtcdRegistry({ endpoints: [etcd.endpoint], prefix, leaseTtlSeconds: 5, dialTimeoutMs: 1000 }),
      new EtcdRegistry({ endpoints: [etcd.endpoint], prefix, leaseTtlSeconds: 5, dialTimeoutMs: 1000, credentials: { ...ETCD_USER, password: 'wrong' } }),
      new EtcdRegistry({ endpoints: [etcd.endpoint], prefix: '/elsewhere/', leaseTtlSeconds: 5, dialTimeoutMs: 1000, credentials: ETCD_USER }),
    ];
    try {
      const registration = await owner.registerNode(nodeRecord('n1'));
      expect((await owner.list()).entries.map((e) => e.id)).to.deep.equal(['n1']);
      for (const [i, client] of clients.entries()) {
        const listed = await failure(client.list());
        expect(isBackendError(listed, 'REGISTRY_UNAVAILABLE'), `client ${String(i)}: ${String(listed)}`).to.equal(true);
        const forged = await failure(client.registerNode(nodeRecord('forged')));
        expect(isBackendError(forged, 'REGISTRY_UNAVAILABLE'), `client ${String(i)} registering: ${String(forged)}`).to.equal(true);
      }
      expect((await owner.list()).entries.map((e) => e.id)).to.deep.equal(['n1']);
      await registration.revoke();
    } finally {
      await Promise.all([owner.close(), ...clients.map((c) => c.close())]);
    }
  });

  it('refuses a memcached client without credentials or with a wrong password: nothing read, nothing written', async () => {
    const prefix = `${uniqueName('sasl')}:`;
    const owner = new MemcachedSessionStore({ servers: [memcached.address], prefix, credentials: MEMCACHED_USER, logger: silentLogger });
    const anonymous = new MemcachedSessionStore({ servers: [memcached.address], prefix, logger: silentLogger });
    const wrong = new MemcachedSessionStore({ servers: [memcached.address], prefix, credentials: { ...MEMCACHED_USER, password: 'wrong' }, logger: silentLogger });
    try {
      await owner.put(sessionRecord('alice', 'alice-key'), 30);
      for (const [name, client] of [['anonymous', anonymous], ['wrong password', wrong]] as const) {
        const read = await failure(client.get('alice'));
        expect(isBackendError(read, 'SESSION_STORE_UNAVAILABLE'), `${name}: ${String(read)}`).to.equal(true);
        const forged = await failure(client.put(sessionRecord('alice', 'attacker-key'), 30));
        expect(isBackendError(forged, 'SESSION_STORE_UNAVAILABLE'), `${name} writing: ${String(forged)}`).to.equal(true);
      }
      expect((await owner.get('alice'))?.listeningKey).to.equal('alice-key');
    } finally {
      await Promise.all([owner.close(), anonymous.close(), wrong.close()]);
    }
  });
});

describe('a cluster of real processes on stores with credentials (issue 28)', function () {
  this.timeout(90_000);
  let cluster: LocalCluster;
  const sockets: TestSocket[] = [];

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 2, storeCredentials: { etcd: ETCD_USER, memcached: MEMCACHED_USER } });
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await cluster?.stop();
  });

  it('allocates, welcomes and relays across nodes, and logs no store password', async () => {
    const nodes = [...cluster.nodes.values()];
    const [a, b] = await Promise.all([
      requestSession(cluster.gatewayUrl, uniqueName('alice'), { avoid: [nodes[1]?.nodeId ?? ''] }),
      requestSession(cluster.gatewayUrl, uniqueName('bob'), { avoid: [nodes[0]?.nodeId ?? ''] }),
    ]);
    expect(a.nodeId).to.not.equal(b.nodeId);
    const alice = TestSocket.forSession(a);
    const bob = TestSocket.forSession(b);
    sockets.push(alice, bob);
    await Promise.all([alice.welcomed(), bob.welcomed()]);
    alice.send({ type: 'message', to: b.userId, content: { hello: 'across nodes' }, id: 'm1' });
    await bob.waitForFrame((f) => f.type === 'message' && f.from === a.userId);
    await alice.waitForFrame((f) => f.type === 'ack' && f.id === 'm1');
    const logs = cluster.logs();
    expect(logs).to.not.include(ETCD_USER.password);
    expect(logs).to.not.include(MEMCACHED_USER.password);
  });
});
