import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connectUser, isProcessAlive, waitFor } from '@messaging-server/testkit';
import { ForegroundJob } from './support/fresh-clone.js';

/** Issue 3, acceptance 12: `make run` comes up, prints one ready line, relays, and stops cleanly on Ctrl-C. */
describe('make run', function () {
  this.timeout(120_000);

  it('prints a ready line with the URLs, relays a message between two clients, and stops on Ctrl-C', async () => {
    // Free ports, so the test does not collide with a developer's own `make run` on 8080.
    // Its own process group, so Ctrl-C reaches make and the cluster manager alike.
    const job = new ForegroundJob('make', ['-s', 'run'], fileURLToPath(new URL('..', import.meta.url)), { ...process.env, CLUSTER_PORTS: 'auto' });
    let nodePids: number[] = [];
    try {
      const ready = await waitFor(() => /^ready: .*$/m.exec(job.output)?.[0], { timeoutMs: 100_000, what: `the ready line in:\n${job.output}` });
      const gatewayUrl = /demo (http:\/\/\S+)\//.exec(ready)?.[1];
      expect(gatewayUrl, ready).to.be.a('string');
      expect(ready).to.match(/nodes node-1 http:\/\/127\.0\.0\.1:\d+\/ws, node-2 http:\/\/127\.0\.0\.1:\d+\/ws/);
      const alice = await connectUser(String(gatewayUrl), 'make-run-alice');
      const bob = await connectUser(String(gatewayUrl), 'make-run-bob');
      alice.socket.send({ to: 'make-run-bob', content: 'through make run', id: 'r1' });
      await bob.socket.waitForFrame((f) => f.type === 'message' && f.content === 'through make run');
      await alice.socket.waitForFrame((f) => f.type === 'ack' && f.id === 'r1');
      alice.socket.close();
      bob.socket.close();
      const state = JSON.parse(readFileSync(new URL('../.run/cluster.json', import.meta.url), 'utf8')) as { nodes: { pid: number }[] };
      nodePids = state.nodes.map((n) => n.pid);
      expect(nodePids).to.have.length(2);
    } finally {
      job.interrupt();
    }
    const { code, signal } = await job.exited;
    // make re-raises the SIGINT it got, so it ends by signal; the cluster manager itself must stop everything first.
    expect(code === 0 || signal === 'SIGINT', `make ended with ${String(code)} ${String(signal)}`).to.equal(true);
    expect(job.output).to.match(/^stopped$/m);
    for (const pid of nodePids) expect(isProcessAlive(pid), `node pid ${String(pid)} still running`).to.equal(false);
  });
});

