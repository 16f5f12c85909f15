// The SDK with the real sockjs-client against a real SockJS server (a minimal in-test stand-in for the cluster).
import { expect } from 'chai';
import { connect, type MessagingClient, type ClosedInfo, type IncomingMessage } from './client.js';
import { MessagingError } from './errors.js';
import { startMiniServer, type MiniServer } from './testing/mini-server.js';
import { eventually } from './testing/fake-rtc.js';

describe('MessagingClient over real SockJS', () => {
  let server: MiniServer;
  const clients: MessagingClient[] = [];
  const open = async (userId: string) => {
    const client = await connect({ gatewayUrl: server.url, userId, pingIntervalMs: 200, pingTimeoutMs: 1000 });
    clients.push(client);
    return client;
  };

  beforeEach(async () => {
    server = await startMiniServer();
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await server.close();
  });

  it('relays a message with ack, and answers pings', async () => {
    const alice = await open('alice');
    const bob = await open('bob');
    expect(alice.nodeId).to.equal('mini-node');
    const states: string[] = [];
    alice.on('state', (state) => states.push(state));
    const inbox: IncomingMessage[] = [];
    bob.on('message', (m) => inbox.push(m));
    await alice.send('bob', { hello: 'bob' });
    await eventually(() => inbox.length === 1, 'delivery');
    expect(inbox[0]).to.deep.include({ from: 'alice', to: 'bob', content: { hello: 'bob' } });
    const error = await alice.send('nobody', 1).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(MessagingError).with.property('code', 'PEER_UNAVAILABLE');
    // The error frame does not cost the connection: a later message goes through on it, with no state change.
    await alice.send('bob', 'after the error');
    await eventually(() => inbox.length === 2, 'the later delivery');
    expect(alice.state).to.equal('open');
    expect(states).to.deep.equal([]);
  });

  it('reconnects through /connect after a drain close (4000)', async () => {
    const alice = await open('alice');
    const states: string[] = [];
    alice.on('state', (s) => states.push(s));
    server.kick('alice', 4000, 'node_shutdown');
    await eventually(() => states.join() === 'reconnecting,open', 'reconnect');
    expect(server.connectCalls.map((c) => c.avoid)).to.deep.equal([undefined, undefined]);
    await alice.send('alice', 'to myself');
  });

  it('stops on session_replaced (4503)', async () => {
    const alice = await open('alice');
    const closed: ClosedInfo[] = [];
    alice.on('closed', (info) => closed.push(info));
    await open('alice');
    await eventually(() => closed.length === 1, 'closed event');
    expect(closed[0]).to.deep.include({ reason: 'session_replaced', code: 4503 });
    expect(alice.state).to.equal('closed');
  });
});
