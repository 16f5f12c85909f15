import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { freePort, waitFor } from '@messaging-server/testkit';
import { cloneHead, descendants, ForegroundJob, isRunning, newcomerEnv, run } from './support/fresh-clone.js';

const REPOSITORY = fileURLToPath(new URL('..', import.meta.url));

/** The packed SDK's Node user: two clients, one message; holds the sessions open until its stdin ends. */
const NODE_APP = `import { connect } from '@messaging-server/client';
const gatewayUrl = process.argv[2];
const alice = await connect({ gatewayUrl, userId: 'alice' });
const bob = await connect({ gatewayUrl, userId: 'bob' });
const received = new Promise((resolve) => bob.on('message', resolve));
await alice.send('bob', { text: 'hello from the packed SDK' });
const message = await received;
console.log(JSON.stringify({ aliceNode: alice.nodeId, bobNode: bob.nodeId, message }));
process.stdin.resume();
process.stdin.on('end', () => { alice.close(); bob.close(); });
`;

/** The one-line browser app a bundler sees. */
const BROWSER_APP = `import { connect } from '@messaging-server/client';
window.app = connect({ gatewayUrl: window.GATEWAY_URL, userId: 'newcomer-browser' }).then((client) => client.nodeId);
`;

/**
 * Issue 15, acceptance 1 and 2: a fresh clone, `make run`, msgctl with no flags and no MSG_* variables, the packed
 * client from an empty directory in Node and in a bundle, `npx messaging-server standalone`, and Ctrl-C.
 */
describe('a newcomer on a fresh clone: make run, npx msgctl, the packed SDK, Ctrl-C', function () {
  this.timeout(120_000);
  let tmp: string;
  let clone: string;
  let job: ForegroundJob | undefined;
  let gatewayUrl: string;
  const timings: Record<string, number> = {};

  before(async function () {
    this.timeout(600_000);
    tmp = await mkdtemp(join(tmpdir(), 'msg-newcomer-'));
    clone = join(tmp, 'messaging-server');
    await cloneHead(REPOSITORY, clone);
    const started = Date.now();
    // Free ports (CLUSTER_PORTS is the cluster script's own switch, not a MSG_* variable), so this never collides
    // with a developer's `make run` on 8080; msgctl must still find this cluster by itself.
    job = new ForegroundJob('make', ['-s', 'run'], clone, newcomerEnv({ CLUSTER_PORTS: 'auto' }));
    const ready = await waitFor(
      () => {
        if (!job?.running) throw new Error(`make run ended:\n${job?.output ?? ''}`);
        return /^ready: .*$/m.exec(job.output)?.[0];
      },
      { timeoutMs: 540_000, intervalMs: 200, what: 'the ready line of make run in the fresh clone' },
    );
    timings['make run on a fresh clone, to ready'] = Date.now() - started;
    gatewayUrl = String(/demo (http:\/\/\S+)\//.exec(ready)?.[1]);
  });

  after(async function () {
    this.timeout(60_000);
    console.error(`newcomer timings (ms): ${JSON.stringify(timings)}`);
    if (job?.running) {
      job.interrupt();
      await Promise.race([job.exited, new Promise((resolve) => setTimeout(resolve, 30_000))]);
    }
    job?.killAll();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('lists both nodes with `npx msgctl nodes --json`, without flags or MSG_* variables', async () => {
    const result = await run('npx', ['msgctl', 'nodes', '--json'], clone);
    expect(result.code, result.stderr).to.equal(0);
    const nodes = JSON.parse(result.stdout) as { nodeId: string; state: string }[];
    expect(nodes.map((n) => n.nodeId).sort()).to.deep.equal(['node-1', 'node-2']);
    expect(nodes.every((n) => n.state === 'active')).to.equal(true);
  });

  it('runs the packed client from an empty directory in Node: connects, messages, and msgctl shows the session', async () => {
    const packs = join(tmp, 'packs');
    const app = join(tmp, 'node-app');
    await Promise.all([mkdir(packs), mkdir(app)]);
    const pack = await run('npm', ['pack', '--workspace', '@messaging-server/client', '--workspace', '@messaging-server/protocol', '--pack-destination', packs], clone);
    expect(pack.code, pack.stderr).to.equal(0);
    const tarballs = readdirSync(packs).map((file) => join(packs, file));
    expect(tarballs).to.have.length(2);
    const install = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs], app);
    expect(install.code, install.stderr).to.equal(0);
    expect(existsSync(join(app, 'node_modules', 'ajv')), 'ajv installed with the client').to.equal(false);
    writeFileSync(join(app, 'app.mjs'), NODE_APP);

    const script = spawn(process.execPath, ['app.mjs', gatewayUrl], { cwd: app, env: newcomerEnv(), stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = once(script, 'exit');
    try {
      const [line] = (await once(createInterface({ input: script.stdout }), 'line')) as [string];
      const result = JSON.parse(line) as { aliceNode: string; bobNode: string; message: { from: string; content: unknown } };
      expect(result.message).to.deep.include({ from: 'alice', content: { text: 'hello from the packed SDK' } });
      expect([result.aliceNode, result.bobNode]).to.have.members(['node-1', 'node-2']);

      // The README's line, as written.
      const session = await run('npx', ['msgctl', 'session', 'alice', '--json'], clone);
      expect(session.code, session.stderr).to.equal(0);
      const shown = JSON.parse(session.stdout) as { session: Record<string, unknown>; nodeAlive: boolean };
      expect(shown.session).to.include({ userId: 'alice', nodeId: result.aliceNode, acked: true });
      expect(shown.session).to.not.have.property('listeningKey');
      expect(shown.nodeAlive).to.equal(true);
    } finally {
      script.stdin.end();
    }
    expect((await exited)[0]).to.equal(0);
  });

  it('bundles a one-line app from the packed client with esbuild: no ajv, no `global` shim, and it connects in Chromium', async () => {
    const app = join(tmp, 'node-app');
    writeFileSync(join(app, 'browser-app.js'), BROWSER_APP);
    // As a user's bundler would: platform browser, no define for `global` or `process`.
    const bundle = await build({
      absWorkingDir: app,
      entryPoints: ['browser-app.js'],
      bundle: true,
      format: 'iife',
      platform: 'browser',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs.filter((input) => input.includes('ajv'))).to.deep.equal([]);
    expect(inputs.some((input) => input.includes('sockjs-client/dist/sockjs.min.js'))).to.equal(true);
    const code = bundle.outputFiles[0]?.text ?? '';
    expect(code).to.not.contain('ajv');

    // The app's own web server, on loopback like the cluster: Chromium refuses a public page's requests to loopback.
    const html = `<!doctype html><script>window.GATEWAY_URL = ${JSON.stringify(gatewayUrl)};</script><script>${code}</script>`;
    const site = createServer((_req, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end(html));
    site.listen(0, '127.0.0.1');
    await once(site, 'listening');
    const browser = await chromium.launch({
      executablePath: process.env['CHROMIUM'] ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(`http://127.0.0.1:${String((site.address() as AddressInfo).port)}/`);
      expect(await page.evaluate('typeof global')).to.equal('undefined');
      expect(await page.evaluate('window.app')).to.be.oneOf(['node-1', 'node-2']);
      expect(errors).to.deep.equal([]);
    } finally {
      await browser.close();
      site.close();
    }
  });

  it('runs `npx messaging-server standalone` from the clone, and Ctrl-C stops it cleanly', async () => {
    const port = await freePort();
    // The port is the only setting: 8080 may be taken by a developer's own `make run`.
    const standalone = new ForegroundJob('npx', ['messaging-server', 'standalone'], clone, newcomerEnv({ MSG_PORT: String(port) }));
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${String(port)}/readyz`)).ok, { timeoutMs: 30_000, what: 'standalone /readyz' });
      const res = await fetch(`http://127.0.0.1:${String(port)}/connect`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'newcomer-standalone' }),
      });
      expect(res.status).to.equal(200);
      // The whole group gets the SIGINT, and npx passes it on as well: the server must take it as one request.
      standalone.interrupt();
      const status = await standalone.exited;
      // npx itself ends by re-raising the SIGINT (130 in a shell) once its child is done, as make does.
      expect(status.code === 0 || status.signal === 'SIGINT', JSON.stringify(status)).to.equal(true);
      expect(standalone.output).to.match(/"msg":"standalone stopped"/);
      expect(standalone.output).to.not.match(/stop failed|"level":50/);
    } finally {
      standalone.killAll();
    }
  });

  it("runs the README's SDK quick start block as written, against this cluster", async () => {
    const block = /### SDK quick start[\s\S]*?```sh\n([\s\S]*?)```/.exec(readFileSync(join(clone, 'README.md'), 'utf8'))?.[1] ?? '';
    // Two things differ from a reader's terminal, and each must be where the README has it: the gateway is this
    // run's (free ports), and the packs go to this test's directory rather than a shared /tmp/sdk.
    expect(block.match(/http:\/\/127\.0\.0\.1:8080/g), 'the gateway URL in the block').to.have.length(1);
    expect(block.match(/\/tmp\/sdk/g), '/tmp/sdk in the block').to.have.length(4);
    const script = block.replace('http://127.0.0.1:8080', gatewayUrl).replaceAll('/tmp/sdk', join(tmp, 'sdk'));
    const result = await run('bash', ['-euo', 'pipefail', '-c', script], clone);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout.trim().split('\n').at(-1)).to.equal("alice { text: 'hello' }");
  });

  it("runs the README's second-terminal lines: scripts/cluster.ts scale, add, drain, kill, etcd and memcached restart, status, and msgctl watch and drain", async () => {
    const cluster = async (...args: string[]): Promise<unknown> => {
      const result = await run('node', ['--import', 'tsx', 'scripts/cluster.ts', ...args], clone);
      expect(result.code, `cluster.ts ${args.join(' ')}: ${result.stderr}`).to.equal(0);
      return JSON.parse(result.stdout) as unknown;
    };
    const watch = new ForegroundJob('npx', ['msgctl', 'watch'], clone, newcomerEnv());
    const watched = (id: string, type: 'put' | 'delete'): boolean =>
      watch.output.split('\n').some((line) => line.includes(`"type":"${type}"`) && line.includes(`"id":"${id}"`));
    try {
      await waitFor(() => watched('node-1', 'put') && watched('node-2', 'put'), { what: `the watch snapshot:\n${watch.output}` });
      // Nodes 1 and 2 stay for the Ctrl-C test below; the lines are the README's, on the nodes this test adds.
      expect(await cluster('scale', '4')).to.deep.include({ nodes: ['node-1', 'node-2', 'node-3', 'node-4'] });
      expect(await cluster('add')).to.deep.equal({ added: 'node-5' });
      await waitFor(() => watched('node-5', 'put'), { what: 'node-5 in the watch' });
      expect(await cluster('drain', 'node-3')).to.deep.equal({ nodeId: 'node-3', exit: 0 });
      expect(await cluster('kill', 'node-4')).to.deep.equal({ nodeId: 'node-4', killed: true });
      const drain = await run('npx', ['msgctl', 'drain', 'node-5'], clone);
      expect(drain.code, drain.stderr).to.equal(0);
      await waitFor(() => watched('node-3', 'delete') && watched('node-5', 'delete'), { what: 'the drained nodes leave the watch' });
      expect(await cluster('etcd', 'restart')).to.deep.equal({ etcd: 'running' });
      expect(await cluster('memcached', 'restart')).to.deep.equal({ memcached: 'running' });
      const status = await waitFor(
        async () => {
          const now = (await cluster('status')) as { registry: string; registered: string[] | null };
          return now.registry === 'ok' && now.registered?.join() === 'node-1,node-2' ? now : undefined;
        },
        { timeoutMs: 30_000, what: 'node-1 and node-2 registered again, node-4 gone with its lease' },
      );
      expect(status.registered).to.deep.equal(['node-1', 'node-2']);
    } finally {
      watch.interrupt();
    }
    const ended = await watch.exited;
    expect(ended.code === 0 || ended.signal === 'SIGINT', JSON.stringify(ended)).to.equal(true);
    expect(job?.output).to.match(/node-3 exited \(code 0\)/).and.match(/node-4 exited \(SIGKILL\)/).and.match(/node-5 exited \(code 0\)/);
  });

  it('stops every process on Ctrl-C to the process group within 30 s, each with exit 0 and its clean-stop line', async () => {
    if (!job?.child.pid) throw new Error('make run is not running');
    const processes = [job.child.pid, ...descendants(job.child.pid)];
    expect(processes.length, 'make, the cluster script, etcd, memcached, a gateway and 2 nodes').to.be.at.least(7);
    const interrupted = Date.now();
    job.interrupt();
    const status = await job.exited;
    await waitFor(() => processes.every((pid) => !isRunning(pid)), { timeoutMs: 30_000, what: `every process of make run to end (${processes.join(', ')})` });
    timings['Ctrl-C until every process is gone'] = Date.now() - interrupted;
    // make re-raises a SIGINT it got while its recipe was still running; either way its recipe ended with 0.
    expect(status.code === 0 || status.signal === 'SIGINT', `make ended with ${JSON.stringify(status)}\n${job.output}`).to.equal(true);
    const output = job.output;
    for (const name of ['node-1', 'node-2', 'gateway-1']) expect(output).to.contain(`${name} exited (code 0)`);
    expect(output).to.match(/^stopped$/m);
    expect(output).to.not.match(/exited unexpectedly|\(code [1-9]\d*\)|Error|\*\*\*/);
    const log = (name: string): string => readFileSync(join(clone, '.run', 'logs', `${name}.log`), 'utf8');
    for (const node of ['node-1', 'node-2']) expect(log(node)).to.contain('"msg":"node drained, exiting"');
    expect(log('gateway-1')).to.contain('"msg":"gateway stopped"');
  });
  it('runs `make run-tls` in the same fresh clone: ready line, a session through the proxy with the printed CA, Ctrl-C exits 0', async function () {
    this.timeout(240_000);
    // The state directory is the default, relative `.run`: the case that doubled nginx's paths.
    const tls = new ForegroundJob('make', ['-s', 'run-tls'], clone, newcomerEnv({ CLUSTER_PORTS: 'auto' }));
    try {
      const ready = await waitFor(
        () => {
          if (!tls.running) throw new Error(`make run-tls ended:\n${tls.output}`);
          return /^ready: .*$/m.exec(tls.output)?.[0];
        },
        { timeoutMs: 180_000, intervalMs: 200, what: 'the ready line of make run-tls' },
      );
      const origin = String(/^ready: demo (https:\/\/127\.0\.0\.1:\d+)\//.exec(ready)?.[1]);
      const caPath = / \| CA (\S+) /.exec(ready)?.[1] ?? '';
      expect(caPath).to.equal(join(clone, '.run/proxy/tls/ca.crt'));
      const ca = readFileSync(caPath);
      const trusting = new Agent({ connect: { ca } });
      try {
        const res = await request(`${origin}/connect`, {
          method: 'POST',
          dispatcher: trusting,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ userId: 'newcomer-tls' }),
        });
        expect(res.statusCode).to.equal(200);
        const session = (await res.body.json()) as { listeningAddress: string; listeningKey: string; nodeId: string };
        expect(session.listeningAddress).to.equal(`${origin}/n/${session.nodeId}/ws`);
        const url = new URL(`${session.listeningAddress.replace(/^https/, 'wss')}/websocket`);
        url.searchParams.set('userId', 'newcomer-tls');
        url.searchParams.set('listeningKey', session.listeningKey);
        const socket = new WebSocket(url, { ca });
        const [first] = (await once(socket, 'message')) as [Buffer];
        expect(JSON.parse(first.toString('utf8'))).to.include({ type: 'welcome', nodeId: session.nodeId });
        socket.close();
      } finally {
        await trusting.close();
      }
    } finally {
      tls.interrupt();
    }
    const status = await tls.exited;
    expect(status.code === 0 || status.signal === 'SIGINT', `make run-tls ended with ${JSON.stringify(status)}\n${tls.output}`).to.equal(true);
    for (const name of ['node-1', 'node-2', 'gateway-1']) expect(tls.output).to.contain(`${name} exited (code 0)`);
    expect(tls.output).to.match(/^stopped$/m);
    expect(tls.output).to.not.match(/exited unexpectedly|\(code [1-9]\d*\)/);
  });
});
