import { expect } from 'chai';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { fileURLToPath } from 'node:url';
import { isProcessAlive, waitFor } from '@messaging-server/testkit';
import { ForegroundJob } from './support/fresh-clone.js';

interface ConnectAnswer {
  listeningAddress: string;
  listeningKey: string;
  nodeId: string;
}

/** A raw SockJS websocket (`<listeningAddress>/websocket`) through the proxy, trusting only the run's CA. */
async function openRaw(session: ConnectAnswer, userId: string, ca: Buffer): Promise<{ socket: WebSocket; frames: unknown[] }> {
  const url = new URL(`${session.listeningAddress.replace(/^https/, 'wss')}/websocket`);
  url.searchParams.set('userId', userId);
  url.searchParams.set('listeningKey', session.listeningKey);
  const socket = new WebSocket(url, { ca });
  const frames: unknown[] = [];
  socket.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString('utf8'))));
  await once(socket, 'open');
  return { socket, frames };
}

/** Issue 14, acceptance 1: `make run-tls` is `make run` behind the real proxy, on one TLS origin. */
describe('make run-tls', function () {
  this.timeout(120_000);

  it('serves the demo, /connect and every node on one https origin with a CA made at start, and stops on Ctrl-C', async () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    await mkdir(join(root, '.tmp'), { recursive: true });
    // Relative, as the default `.run` is: nginx takes every path against its prefix, and a relative one was doubled.
    const stateDir = relative(root, await mkdtemp(join(root, '.tmp', 'run-tls-')));
    // Free ports (the fixed 8443 may belong to a developer's own run), and a state dir of its own; its own process
    // group, so Ctrl-C reaches make and the cluster manager alike.
    const env = { ...process.env, CLUSTER_PORTS: 'auto', CLUSTER_STATE_DIR: stateDir };
    const job = new ForegroundJob('make', ['-s', 'run-tls'], root, env);
    const dispatcher = new Agent(); // the system's CAs only
    const pids: number[] = [];
    try {
      const ready = await waitFor(() => /^ready: .*$/m.exec(job.output)?.[0], { timeoutMs: 100_000, what: `the ready line in:\n${job.output}` });
      const origin = /^ready: demo (https:\/\/127\.0\.0\.1:\d+)\/ \| connect POST \1\/connect \| /.exec(ready)?.[1];
      expect(origin, ready).to.be.a('string');
      expect(ready).to.contain(`nodes node-1 ${String(origin)}/n/node-1/ws, node-2 ${String(origin)}/n/node-2/ws`);
      const caPath = / \| CA (\S+) /.exec(ready)?.[1] ?? '';
      const ca = await readFile(resolve(root, caPath));
      expect(ca.toString('utf8')).to.match(/^-----BEGIN CERTIFICATE-----/);
      const trusting = new Agent({ connect: { ca } });

      const demo = await request(`${String(origin)}/`, { dispatcher: trusting });
      expect(demo.statusCode).to.equal(200);
      expect(await demo.body.text()).to.match(/<html/i);
      // Without the CA the certificate is not trusted: the TLS is real.
      const untrusted = await request(`${String(origin)}/healthz`, { dispatcher }).then(
        () => 'trusted',
        (error: Error & { code?: string }) => error.code ?? error.message,
      );
      expect(untrusted).to.match(/CERT|SELF_SIGNED|UNABLE_TO/);

      const connect = async (userId: string, avoid: string[]): Promise<ConnectAnswer> => {
        const res = await request(`${String(origin)}/connect`, {
          method: 'POST',
          dispatcher: trusting,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ userId, avoid }),
        });
        expect(res.statusCode).to.equal(200);
        return (await res.body.json()) as ConnectAnswer;
      };
      const alice = await connect('tls-alice', []);
      const bob = await connect('tls-bob', [alice.nodeId]);
      expect(bob.nodeId).to.not.equal(alice.nodeId);
      for (const session of [alice, bob]) expect(session.listeningAddress).to.equal(`${String(origin)}/n/${session.nodeId}/ws`);

      const a = await openRaw(alice, 'tls-alice', ca);
      const b = await openRaw(bob, 'tls-bob', ca);
      await waitFor(() => a.frames.length > 0 && b.frames.length > 0, { what: 'both welcomes' });
      expect(a.frames[0]).to.include({ type: 'welcome', nodeId: alice.nodeId });
      expect(b.frames[0]).to.include({ type: 'welcome', nodeId: bob.nodeId });
      a.socket.send(JSON.stringify({ type: 'message', to: 'tls-bob', content: 'across nodes, through the proxy', id: 't1' }));
      await waitFor(() => b.frames.some((f) => (f as { content?: unknown }).content === 'across nodes, through the proxy'), { what: 'the relayed message' });
      await waitFor(() => a.frames.some((f) => (f as { type?: string; id?: string }).type === 'ack' && (f as { id?: string }).id === 't1'), { what: 'the ack' });
      a.socket.close();
      b.socket.close();
      await trusting.close();

      const state = JSON.parse(await readFile(join(root, stateDir, 'cluster.json'), 'utf8')) as { nodes: { pid: number }[] };
      pids.push(...state.nodes.map((n) => n.pid));
      pids.push(Number(await readFile(join(root, stateDir, 'proxy', 'nginx.pid'), 'utf8')));
      expect(pids.filter((pid) => pid > 0)).to.have.length(3);
    } finally {
      await dispatcher.close();
      job.interrupt();
    }
    const { code, signal } = await job.exited;
    expect(code === 0 || signal === 'SIGINT', `make ended with ${String(code)} ${String(signal)}`).to.equal(true);
    expect(job.output).to.match(/^stopped$/m);
    for (const pid of pids) expect(isProcessAlive(pid), `pid ${String(pid)} (a node or nginx) still running`).to.equal(false);
    await rm(join(root, stateDir), { recursive: true, force: true });
  });
});
