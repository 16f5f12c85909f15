import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { screenshotChecked, useBrowserWorld } from './support/browser-world.js';
import type { RemotePage } from './support/e2e-remote.js';

// `UPDATE_SCREENSHOT=1` refreshes the committed screenshot (README, "Behind the proxy"); otherwise a temp dir.
const COMMITTED_SCREENSHOT = fileURLToPath(new URL('../docs/demo-tls-screenshot.png', import.meta.url));

/**
 * Issue 14, acceptance 2: real Chromium through the real proxy (nginx with k8s/base/proxy/routes.conf, TLS from a CA
 * made for the run) in a network namespace. Nodes listen on loopback only, so every request a page makes to a node
 * can only have gone through the proxy's one origin.
 */
describe('browser end to end through the TLS proxy: one origin, a path per node', function () {
  this.timeout(60_000);
  let origin: string;
  const pages: Record<string, RemotePage> = {};
  const nodeOf: Record<string, string> = {};

  const world = useBrowserWorld('browser proxy');

  before(async function () {
    this.timeout(60_000);
    const { driver } = world();
    const started = await driver.call<{ gatewayUrl: string; nodes: { nodeId: string; listeningAddress: string }[] }>('start', { proxy: true });
    origin = started.gatewayUrl;
    expect(origin).to.match(/^https:\/\/\d+\.\d+\.\d+\.\d+:\d+$/);
    expect(started.nodes.map((n) => n.listeningAddress)).to.have.members([`${origin}/n/node-1/ws`, `${origin}/n/node-2/ws`]);
    await driver.call('launch', { ignoreHttpsErrors: true });
    for (const name of ['alice', 'bob', 'carol', 'dave']) pages[name] = await driver.openPage(name);
  });

  const page = (name: string): RemotePage => {
    const found = pages[name];
    if (!found) throw new Error(`no page ${name}`);
    return found;
  };

  async function connect(name: string): Promise<string> {
    const p = page(name);
    await p.fill('#userId', name);
    await p.click('#connect');
    await p.waitFor('window.demo.state === "open" && window.demo.nodeId !== null');
    const nodeId = await p.evaluate<string>('window.demo.nodeId');
    expect(await p.evaluate('window.demo.listeningAddress')).to.equal(`${origin}/n/${nodeId}/ws`);
    return nodeId;
  }

  /** Connects two pages on different nodes (allocation is least-loaded; a reconnect asks the gateway again). */
  async function connectPair(first: string, second: string, query = ''): Promise<void> {
    await page(first).goto(`${origin}/${query}`);
    await page(second).goto(`${origin}/${query}`);
    nodeOf[first] = await connect(first);
    nodeOf[second] = await connect(second);
    for (let attempt = 0; nodeOf[second] === nodeOf[first] && attempt < 5; attempt++) {
      await page(second).click('#disconnect');
      await page(second).waitFor('window.demo.state === "closed"');
      nodeOf[second] = await connect(second);
    }
    expect(nodeOf[second]).to.not.equal(nodeOf[first]);
  }

  async function call(from: string, to: string, text: string): Promise<void> {
    await page(from).fill('#peer', to);
    await page(from).click('#call');
    for (const name of [from, to]) {
      await page(name).waitFor('window.demo.pcState === "connected" && window.demo.channelState === "open"', 20_000);
    }
    await page(from).fill('#chat-input', text);
    await page(from).press('#chat-input', 'Enter');
    await page(to).waitFor(`window.demo.lastChannelMessage === ${JSON.stringify(text)}`);
    expect(await page(to).textContent('#chat-log')).to.contain(`${from}: ${text}`);
  }

  async function hangUp(from: string, to: string): Promise<void> {
    await page(from).click('#hangup');
    await page(to).waitFor('window.demo.call === null');
    await page(from).waitFor('window.demo.call === null && window.demo.state === "open"');
  }

  it('calls between two users on different nodes over WebSocket through the proxy', async () => {
    await connectPair('alice', 'bob');
    for (const name of ['alice', 'bob']) {
      await page(name).click('#camera');
      await page(name).waitFor('document.querySelector("#local-video").videoWidth > 0');
    }
    await call('alice', 'bob', 'hello bob, through the proxy');
    for (const name of ['alice', 'bob']) await page(name).waitFor('document.querySelector("#remote-video").videoWidth > 0');
    for (const name of ['alice', 'bob']) {
      const { websockets, nodeRequests } = await page(name).traffic();
      const wss = origin.replace(/^https/, 'wss');
      expect(websockets).to.have.length.greaterThan(0);
      for (const url of websockets) expect(url).to.match(new RegExp(`^${wss}/n/${String(nodeOf[name])}/ws/\\d+/\\w+/websocket$`));
      expect(nodeRequests.filter((url) => url.includes('xhr_streaming'))).to.deep.equal([]);
    }
  });

  it('does the same exchange on the xhr-streaming fallback, no WebSocket at all', async () => {
    await connectPair('carol', 'dave', '?transports=xhr-streaming');
    await call('carol', 'dave', 'hello dave, streamed');
    for (const name of ['carol', 'dave']) {
      const { websockets, nodeRequests } = await page(name).traffic();
      expect(websockets).to.deep.equal([]);
      const streams = nodeRequests.filter((url) => url.endsWith('/xhr_streaming'));
      expect(streams, nodeRequests.join('\n')).to.have.length.greaterThan(0);
      for (const url of streams) expect(url).to.match(new RegExp(`^${origin}/n/${String(nodeOf[name])}/ws/\\d+/\\w+/xhr_streaming$`));
      // The page's own frames went up through the proxy as well.
      expect(nodeRequests.some((url) => url.endsWith('/xhr_send'))).to.equal(true);
    }
    await hangUp('carol', 'dave');
  });

  it('screenshots the demo page mid-call, its node address on the proxy origin', async () => {
    await screenshotChecked(page('bob'), COMMITTED_SCREENSHOT, world().tmp);
    expect(await page('bob').textContent('#node-address')).to.equal(`${origin}/n/${String(nodeOf['bob'])}/ws`);
  });

  it("drains alice's node: she sees 4000, reconnects through the proxy to the other node, and the next call works", async () => {
    const drained = String(nodeOf['alice']);
    const remaining = String(nodeOf['bob']);
    await hangUp('alice', 'bob');
    const status = await world().driver.call<{ code: number | null }>('drain', { nodeId: drained });
    expect(status.code).to.equal(0);
    const alice = page('alice');
    await alice.waitFor(`window.demo.nodeId === ${JSON.stringify(remaining)} && window.demo.state === "open"`, 20_000);
    expect(await alice.evaluate('window.demo.closeCodes')).to.deep.equal([4000]);
    expect(await alice.textContent('#signal-log')).to.contain('node closed the connection: 4000 node_shutdown');
    expect(await alice.evaluate('window.demo.listeningAddress')).to.equal(`${origin}/n/${remaining}/ws`);
    await call('alice', 'bob', 'hello again bob, after the drain');
  });
});
