import { expect } from 'chai';
import type { Envelope } from '../envelope.js';
import { DELIVER_PATH, OUTCOMES_PATH } from './internal-wire.js';
import { createPeerRoutes } from './peer-routes.js';
import type { LocalDelivery } from './ports.js';

/** A node where bob is connected, node-a is registered at http://a, and only alice's session is on node-a. */
function nodeB(): { local: LocalDelivery; written: Envelope[] } {
  const written: Envelope[] = [];
  const local: LocalDelivery = {
    connected: (userId) => userId === 'bob',
    here: (userId) => userId === 'bob',
    locate: () => Promise.resolve({ kind: 'none' }),
    deliverOrHold: (envelope) => (written.push(envelope), 'delivered'),
    departures: undefined,
    senderOn: (userId, nodeId) => Promise.resolve(userId === 'alice' && nodeId === 'node-a'),
    recipientMovedFrom: (userId, nodeId) => Promise.resolve(userId === 'carol' && nodeId === 'node-a'),
    peerAddress: (nodeId) => (nodeId === 'node-a' ? 'http://a' : undefined),
    keptOutcome: () => false,
    senderOf: () => undefined,
  };
  return { local, written };
}

const request = (messages: { from: string; to: string }[], fromNode = 'node-a', replyTo = 'http://a') => ({
  fromNode,
  replyTo,
  messages: messages.map((m, i) => ({ ...m, content: i, id: `m${String(i)}`, cid: 'c1' })),
});

describe('peer routes: what another node may ask of this one', function () {
  it('delivers what a registered node sends for its own users, and refuses only the forged sender of a batch', async function () {
    const { local, written } = nodeB();
    const serve = createPeerRoutes(local);
    const answer = await serve(DELIVER_PATH, request([{ from: 'alice', to: 'bob' }, { from: 'mallory', to: 'bob' }]), 'node-a', performance.now());
    expect(answer).to.deep.equal({ status: 200, body: { results: [{ status: 'delivered' }, { status: 'error', code: 'FORBIDDEN_SENDER' }] } });
    expect(written.map((e) => [e.from, e.to, e.origin])).to.deep.equal([['alice', 'bob', { kind: 'remote', replyTo: 'http://a', cid: 'c1' }]]);
  });

  it('takes what a node hands on for a recipient that just moved from it, whoever the sender (a drain), and nothing else', async function () {
    const { local, written } = nodeB();
    local.connected = (userId) => userId === 'bob' || userId === 'carol';
    local.here = local.connected;
    const serve = createPeerRoutes(local);
    const answer = await serve(DELIVER_PATH, request([{ from: 'mallory', to: 'carol' }, { from: 'mallory', to: 'bob' }]), 'node-a', performance.now());
    expect(answer).to.deep.equal({ status: 200, body: { results: [{ status: 'delivered' }, { status: 'error', code: 'FORBIDDEN_SENDER' }] } });
    expect(written.map((e) => [e.from, e.to])).to.deep.equal([['mallory', 'carol']]);
  });

  it('refuses a request signed by another node, one whose replyTo is not the registered address, and a malformed one', async function () {
    const { local, written } = nodeB();
    const serve = createPeerRoutes(local);
    const now = performance.now();
    expect(await serve(DELIVER_PATH, request([{ from: 'alice', to: 'bob' }]), 'node-c', now)).to.have.property('error', 'FORBIDDEN_SENDER');
    expect(await serve(DELIVER_PATH, request([{ from: 'alice', to: 'bob' }], 'node-a', 'http://evil'), 'node-a', now)).to.have.property('error', 'FORBIDDEN_SENDER');
    expect(await serve(DELIVER_PATH, { fromNode: 'node-a' }, undefined, now)).to.deep.equal({ error: 'INVALID_REQUEST', message: 'malformed delivery request' });
    expect(await serve(OUTCOMES_PATH, { outcomes: 'no' }, undefined, now)).to.have.property('error', 'INVALID_REQUEST');
    expect(written).to.deep.equal([]);
  });

  it('answers RELAY_FAILED for every message of a request whose sender has stopped waiting', async function () {
    const { local, written } = nodeB();
    const late = { ...request([{ from: 'alice', to: 'bob' }]), budgetMs: 5 };
    const answer = await createPeerRoutes(local)(DELIVER_PATH, late, 'node-a', performance.now() - 50);
    expect(answer).to.deep.equal({ status: 200, body: { results: [{ status: 'error', code: 'RELAY_FAILED' }] } });
    expect(written).to.deep.equal([]);
  });
});
