import { expect } from 'chai';
import type { SessionRecord } from '@messaging-server/protocol';
import { waitFor } from '@messaging-server/testkit';
import { REPLACE_PATH } from '@messaging-server/core';
import { startHarness, type Harness } from './harness.test.js';

function record(userId: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    userId,
    listeningAddress: 'http://127.0.0.1:1/node-a/ws',
    listeningKey: 'old-key',
    acked: false,
    nodeId: 'node-a',
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

describe('session conflict: replace (default)', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
    await h.addNode('node-a');
  });
  afterEach(async () => h.close());

  it('replaces the session and tells the old node to close its connection', async () => {
    const first = await h.connect('alice');
    const second = await h.connect('alice');
    expect(second.status).to.equal(200);
    expect(second.body['listeningKey']).to.not.equal(first.body['listeningKey']);
    expect((await h.store.inner.get('alice'))?.listeningKey).to.equal(second.body['listeningKey']);
    await waitFor(() => h.transport.posts.length === 1, { what: 'replace notification' });
    expect(h.transport.posts[0]).to.deep.equal({
      peerAddress: 'http://127.0.0.1:2/node-a',
      path: REPLACE_PATH,
      body: { userId: 'alice', listeningKey: first.body['listeningKey'] },
    });
  });

  it('names the node the replaced session was on (movedFrom), and only when the user moves to another node', async () => {
    await h.addNode('node-b');
    await h.store.inner.put(record('alice', { acked: true, nodeId: 'node-x' }), 120);
    const moved = await h.connect('alice');
    expect(moved.status).to.equal(200);
    expect((await h.store.inner.get('alice'))?.movedFrom).to.equal('node-x');
    await h.store.inner.put(record('alice', { acked: true, nodeId: String(moved.body['nodeId']) }), 120);
    const again = await h.connect('alice', { avoid: [moved.body['nodeId'] === 'node-a' ? 'node-b' : 'node-a'] });
    expect(again.body['nodeId']).to.equal(moved.body['nodeId']);
    expect((await h.store.inner.get('alice'))?.movedFrom, 'same node: no move').to.equal(undefined);
  });

  it('does not notify anyone for a first session', async () => {
    const first = await h.connect('alice');
    await h.connect('bob');
    // A notice may go out after the answer, so "none yet" would prove nothing: a later replacement's notice is the
    // signal that every earlier /connect has had its chance to send one, and it must be the only one.
    await h.connect('alice');
    await waitFor(() => h.transport.posts.length >= 1, { what: "the second alice's replace notification" });
    expect(h.transport.posts.map((p) => p.body)).to.deep.equal([{ userId: 'alice', listeningKey: first.body['listeningKey'] }]);
  });

  it('replaces a session this gateway never allocated (another gateway, or before a restart) and tells its node', async () => {
    // The gateway's first call for a user it has not seen is an atomic add; it fails on this record, so the gateway
    // reads the record it replaces, as it did before the add came first.
    await h.store.inner.put(record('alice', { acked: true }), 120);
    const second = await h.connect('alice');
    expect(second.status).to.equal(200);
    expect(await h.store.inner.get('alice')).to.include({ listeningKey: second.body['listeningKey'], acked: false });
    await waitFor(() => h.transport.posts.length === 1, { what: 'replace notification' });
    expect(h.transport.posts[0]?.body).to.deep.equal({ userId: 'alice', listeningKey: 'old-key' });
  });

  it('writes a user with no record by one add, without reading first', async () => {
    const calls: string[] = [];
    const inner = h.store.inner;
    const get = inner.get.bind(inner);
    const create = inner.create.bind(inner);
    const put = inner.put.bind(inner);
    inner.get = (userId) => (calls.push('get'), get(userId));
    inner.create = (r, ttl) => (calls.push('create'), create(r, ttl));
    inner.put = (r, ttl) => (calls.push('put'), put(r, ttl));
    expect((await h.connect('carol')).status).to.equal(200);
    expect(calls).to.deep.equal(['create']);
    // Seen here lately: a record probably exists, so it is read (to tell its node) and overwritten.
    calls.length = 0;
    expect((await h.connect('carol')).status).to.equal(200);
    expect(calls).to.deep.equal(['get', 'put']);
  });

  it('answers 200 even when the old node cannot be told', async () => {
    h.transport.post = () => Promise.reject(new Error('refused'));
    await h.connect('alice');
    expect((await h.connect('alice')).status).to.equal(200);
  });
});

describe('session conflict: reject', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness({ env: { MSG_SESSION_CONFLICT: 'reject', MSG_HANDSHAKE_TIMEOUT_SECONDS: '30' } });
    await h.addNode('node-a');
  });
  afterEach(async () => h.close());

  it('409 USER_TAKEN for a live un-acked session', async () => {
    const first = await h.connect('alice');
    const second = await h.connect('alice');
    expect(second.status).to.equal(409);
    expect(second.body).to.deep.equal({ error: { code: 'USER_TAKEN', message: 'userId is already connected' } });
    expect((await h.store.inner.get('alice'))?.listeningKey).to.equal(first.body['listeningKey']);
  });

  it('409 USER_TAKEN for an acked session on a registered node', async () => {
    await h.store.inner.put(record('alice', { acked: true }), 120);
    expect((await h.connect('alice')).status).to.equal(409);
  });

  it('replaces an acked session whose node is gone', async () => {
    await h.store.inner.put(record('alice', { acked: true, nodeId: 'node-dead' }), 120);
    const { status, body } = await h.connect('alice');
    expect(status).to.equal(200);
    expect((await h.store.inner.get('alice'))?.listeningKey).to.equal(body['listeningKey']);
  });

  it('replaces the session of a moving user (v1.1: its connection ended without its own close), on a registered node', async () => {
    await h.store.inner.put(record('alice', { acked: true, moving: true, movedAt: new Date().toISOString() }), 120);
    const { status, body } = await h.connect('alice');
    expect(status).to.equal(200);
    expect((await h.store.inner.get('alice'))?.listeningKey).to.equal(body['listeningKey']);
  });

  it('replaces an un-acked session older than the handshake timeout', async () => {
    const old = new Date(Date.now() - 31_000).toISOString();
    await h.store.inner.put(record('alice', { createdAt: old }), 120);
    const { status, body } = await h.connect('alice');
    expect(status).to.equal(200);
    expect((await h.store.inner.get('alice'))?.listeningKey).to.equal(body['listeningKey']);
    await waitFor(() => h.transport.posts.length === 1, { what: 'replace notification' });
    expect(h.transport.posts[0]?.body).to.deep.equal({ userId: 'alice', listeningKey: 'old-key' });
  });

  it('of racing connects for one userId whose session is stale, exactly one replaces it', async () => {
    await h.store.inner.put(record('alice', { acked: true, nodeId: 'node-dead' }), 120);
    h.store.interleave = true; // every connect reads the stale record before any of them writes
    const results = await Promise.all(Array.from({ length: 10 }, () => h.connect('alice')));
    const winners = results.filter((r) => r.status === 200);
    expect(winners).to.have.length(1);
    expect(results.filter((r) => r.status === 409)).to.have.length(9);
    expect((await h.store.inner.get('alice'))?.listeningKey).to.equal(winners[0]?.body['listeningKey']);
  });

  it('of racing connects for one userId, exactly one wins', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => h.connect('alice')));
    expect(results.filter((r) => r.status === 200)).to.have.length(1);
    expect(results.filter((r) => r.status === 409)).to.have.length(9);
  });
});
