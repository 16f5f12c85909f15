// Issue 26, acceptance 4 (the part a test can hold): how many memcached calls one connect costs, counted by
// memcached itself, from `/connect` to the welcome.
import { connect as tcpConnect } from 'node:net';
import { once } from 'node:events';
import { expect } from 'chai';
import WebSocket from 'ws';
import { requestSession, startCluster, waitFor, type LocalCluster } from '@messaging-server/testkit';

const CONNECTS = 200;
/** What the server counts for the calls a connect may make: reads, writes (CAS included), touches and deletes. */
const COUNTERS = ['cmd_get', 'cmd_set', 'cmd_touch', 'delete_hits', 'delete_misses'];

async function memcachedStats(address: string): Promise<Map<string, number>> {
  const [host, port] = address.split(':');
  const socket = tcpConnect(Number(port), host);
  await once(socket, 'connect');
  socket.write('stats\r\n');
  let text = '';
  for await (const chunk of socket) {
    text += String(chunk);
    if (text.includes('END\r\n')) break;
  }
  socket.destroy();
  return new Map([...text.matchAll(/^STAT (\S+) (\d+)\r$/gm)].map((m) => [m[1] as string, Number(m[2])]));
}

describe('the cost of a connect in memcached calls', function () {
  this.timeout(120_000);
  let cluster: LocalCluster;

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 1 });
  });
  after(async () => {
    await cluster?.stop();
  });

  it('spends at most 3 memcached calls from /connect to welcome: the gateway adds, the node reads and compares-and-sets', async () => {
    const sockets: WebSocket[] = [];
    const before = await memcachedStats(cluster.memcachedAddress);
    for (let i = 0; i < CONNECTS; i += 1) {
      const session = await requestSession(cluster.gatewayUrl, `cost-${String(i)}`);
      const url = new URL(`${session.listeningAddress.replace(/^http/, 'ws')}/websocket`);
      url.searchParams.set('userId', session.userId);
      url.searchParams.set('listeningKey', session.listeningKey);
      const socket = new WebSocket(url);
      sockets.push(socket);
      const [data] = (await once(socket, 'message')) as [Buffer];
      expect(JSON.parse(String(data))).to.include({ type: 'welcome' });
    }
    const after = await memcachedStats(cluster.memcachedAddress);
    const delta = new Map(COUNTERS.map((name) => [name, (after.get(name) ?? 0) - (before.get(name) ?? 0)]));
    const perConnect = [...delta.values()].reduce((a, b) => a + b, 0) / CONNECTS;
    console.log(`      memcached calls per connect: ${perConnect.toFixed(2)} (${JSON.stringify(Object.fromEntries(delta))} over ${String(CONNECTS)})`);
    expect(perConnect).to.be.at.most(3);
    // Every session is acked: the compare-and-set was written, not skipped.
    expect(delta.get('cmd_set'), 'one write by the gateway and one by the node per connect').to.be.at.least(2 * CONNECTS);
    for (const socket of sockets) socket.close();
    await waitFor(() => sockets.every((s) => s.readyState === WebSocket.CLOSED), { what: 'sockets closed' });
  });
});
