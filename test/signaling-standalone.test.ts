import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { freePort, ManagedProcess, waitFor } from '@messaging-server/testkit';
import { describeProtocol } from './protocol-suite.js';

const CLI = fileURLToPath(new URL('../packages/cli/dist/bin/messaging-server.js', import.meta.url));

describe('standalone: gateway and node in one process, no etcd, no memcached', function () {
  this.timeout(30_000);
  let proc: ManagedProcess;
  let base = '';

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${String(port)}`;
    // Point the backends at closed ports: standalone must not touch them at all.
    proc = new ManagedProcess('standalone', process.execPath, [CLI, 'standalone'], {
      PATH: process.env['PATH'],
      MSG_PORT: String(port),
      MSG_HOST: '127.0.0.1',
      MSG_ETCD_ENDPOINTS: 'http://127.0.0.1:1',
      MSG_MEMCACHED_SERVERS: '127.0.0.1:1',
    });
    await waitFor(async () => (await fetch(`${base}/readyz`)).ok, { timeoutMs: 15_000, what: 'standalone ready' });
  });
  after(async () => {
    await proc?.stop();
  });

  describeProtocol('standalone', () => ({ gatewayUrl: base, listeningAddresses: [`${base}/ws`] }));

  // Issue 13: the node's internal API is on a loopback port of its own, never on the public one.
  it('serves no /internal/ path on its public port', async () => {
    for (const path of ['/internal/v1/deliver', '/internal/v1/drain', '/internal/v1/replace', '/internal/v1/outcomes']) {
      const res = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ fromNode: 'x', replyTo: 'http://127.0.0.1:1', messages: [] }),
      });
      expect(res.status, path).to.equal(404);
    }
    expect((await fetch(`${base}/readyz`)).status).to.equal(200);
  });
});
