import { fileURLToPath } from 'node:url';
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
});
