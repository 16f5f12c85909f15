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
import { freePort, waitFor } from '@messaging-server/testkit';
import { cloneHead, descendants, ForegroundJob, isRunning, newcomerEnv, run } from './support/fresh-clone.js';

const REPOSITORY = fileURLToPath(new URL('..', import.meta.url));

/** The packed SDK's Node user: two clients, one message; holds the sessions open until its stdin ends. */
const NODE_APP = `import { connect } from '@messaging-server/client';
const gatewayUrl = process.argv[2];
const alice = await connect({ gatewayUrl, userId: 'newcomer-alice' });
const bob = await connect({ gatewayUrl, userId: 'newcomer-bob' });
const received = new Promise((resolve) => bob.on('message', resolve));
await alice.send('newcomer-bob', { text: 'hello from the packed SDK' });
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
      expect(result.message).to.deep.include({ from: 'newcomer-alice', content: { text: 'hello from the packed SDK' } });
      expect([result.aliceNode, result.bobNode]).to.have.members(['node-1', 'node-2']);

      const session = await run('npx', ['msgctl', 'session', 'newcomer-bob', '--json'], clone);
      expect(session.code, session.stderr).to.equal(0);
      const shown = JSON.parse(session.stdout) as { session: Record<string, unknown>; nodeAlive: boolean };
      expect(shown.session).to.include({ userId: 'newcomer-bob', nodeId: result.bobNode, acked: true });
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
});
