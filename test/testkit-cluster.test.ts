// The test cluster itself: a process whose start fails is stopped, not left running outside the cluster's reach
// (a `make scale` run whose joining node was not ready in time left that node running after the run stopped).
import { expect } from 'chai';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { freePort, startCluster, waitFor, type LocalCluster } from '@messaging-server/testkit';

/** Processes of ours whose environment names this internal port (a node spawned by the cluster). */
function processesWithInternalPort(port: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`MSG_INTERNAL_PORT=${String(port)}`)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return pids;
}

describe('LocalCluster (testkit)', function () {
  this.timeout(30_000);
  let cluster: LocalCluster | undefined;

  after(async () => {
    await cluster?.stop();
  });

  it('stops a node that is not ready in time, and says why its start failed', async () => {
    cluster = await startCluster({ nodes: 0, nodeReadyTimeoutMs: 1000 });
    const ports = { port: await freePort(), internalPort: await freePort() };
    // An etcd that takes connections and never answers: the node stays alive and unready (it cannot register).
    const silent = createServer((socket) => void sockets.push(socket));
    const sockets: Socket[] = [];
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const etcd = `http://127.0.0.1:${String((silent.address() as AddressInfo).port)}`;
    const start = cluster.addNode({ ports, env: { MSG_ETCD_ENDPOINTS: etcd } });
    await waitFor(() => processesWithInternalPort(ports.internalPort).length === 1, { what: 'the node process' });
    const error = await start.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(error), String(error)).to.match(/timed out/);
    expect(processesWithInternalPort(ports.internalPort), 'the node process is gone').to.deep.equal([]);
    expect(cluster.nodes.size).to.equal(0);
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
});
