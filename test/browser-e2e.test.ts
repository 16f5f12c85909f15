import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { screenshotChecked, useBrowserWorld } from './support/browser-world.js';
import type { RemotePage } from './support/e2e-remote.js';

// `UPDATE_SCREENSHOT=1 make test` refreshes the committed screenshot; otherwise it goes to a temp dir, so CI leaves
// the working tree clean.
const COMMITTED_SCREENSHOT = fileURLToPath(new URL('../docs/demo-screenshot.png', import.meta.url));

/** Things the signaling log must never show: SDP lines, candidate attributes, key fields. */
const SECRET_SHAPES = /v=0|a=ice-|a=fingerprint|candidate:|m=(audio|video|application)|listeningKey|sdp/i;

describe('browser end to end: two Chromium pages call each other through a real cluster in a network namespace', function () {
  this.timeout(60_000);
  let gatewayUrl: string;
  let alice: RemotePage;
  let bob: RemotePage;
  let aliceNode: string;
  let bobNode: string;

  const world = useBrowserWorld('browser e2e', async () => {
    const logs = await Promise.all(
      [alice, bob].filter(Boolean).map((p) => p.evaluate<string>('document.querySelector("#signal-log").innerText').catch(() => '')),
    );
    return `signal logs:\n${logs.join('\n--\n')}`;
  });

  before(async function () {
    this.timeout(60_000);
    const { driver } = world();
    const started = await driver.call<{ gatewayUrl: string; nodes: { nodeId: string }[] }>('start');
    gatewayUrl = started.gatewayUrl;
    expect(started.nodes.map((n) => n.nodeId)).to.have.members(['node-1', 'node-2']);
    await driver.call('launch', { secureOrigin: gatewayUrl });
    alice = await driver.openPage('alice');
    bob = await driver.openPage('bob');
  });

  async function connect(page: RemotePage, userId: string): Promise<string> {
    await page.fill('#userId', userId);
    await page.click('#connect');
    await page.waitFor('window.demo.state === "open" && window.demo.nodeId !== null');
    return page.evaluate<string>('window.demo.nodeId');
  }

  async function startCamera(page: RemotePage): Promise<void> {
    await page.click('#camera');
    await page.waitFor('document.querySelector("#local-video").videoWidth > 0');
  }

  async function expectCallUp(): Promise<void> {
    for (const page of [alice, bob]) {
      await page.waitFor('window.demo.pcState === "connected" && window.demo.channelState === "open"', 20_000);
      expect(await page.evaluate('window.demo.pc.connectionState')).to.equal('connected');
      expect(await page.textContent('#pc-state')).to.equal('connected');
    }
  }

  async function chat(from: RemotePage, to: RemotePage, text: string): Promise<void> {
    await from.fill('#chat-input', text);
    await from.press('#chat-input', 'Enter');
    await to.waitFor(`window.demo.lastChannelMessage === ${JSON.stringify(text)}`);
    expect(await to.textContent('#chat-log')).to.contain(`${from.name}: ${text}`);
  }

  /** The addresses of the ICE pair the peer connection selected. */
  function selectedPair(page: RemotePage): Promise<{ local: string; remote: string } | null> {
    return page.evaluate(`(async () => {
      const stats = [...(await window.demo.pc.getStats()).values()];
      const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
      const pair = stats.find((s) => s.id === transport?.selectedCandidatePairId);
      const byId = (id) => stats.find((s) => s.id === id);
      return pair ? { local: byId(pair.localCandidateId).address, remote: byId(pair.remoteCandidateId).address } : null;
    })()`);
  }

  it('puts alice and bob on different nodes, as the gateway allocates them', async () => {
    await alice.goto(`${gatewayUrl}/`);
    await bob.goto(`${gatewayUrl}/`);
    aliceNode = await connect(alice, 'alice');
    bobNode = await connect(bob, 'bob');
    // Allocation is least-loaded, so this almost never loops; reconnecting asks the gateway again.
    for (let attempt = 0; bobNode === aliceNode && attempt < 5; attempt++) {
      await bob.click('#disconnect');
      await bob.waitFor('window.demo.state === "closed"');
      bobNode = await connect(bob, 'bob');
    }
    expect(bobNode).to.not.equal(aliceNode);
    expect([aliceNode, bobNode]).to.have.members(['node-1', 'node-2']);
    expect(await alice.textContent('#node-id')).to.equal(aliceNode);
    expect(await bob.textContent('#node-id')).to.equal(bobNode);
  });

  it('connects a call from alice to bob, with video and chat over the data channel both ways', async () => {
    await startCamera(alice);
    await startCamera(bob);
    await alice.fill('#peer', 'bob');
    await alice.click('#call');
    await expectCallUp();
    // The media path is the namespace's interface, not loopback: host candidates on the veth.
    const pair = await selectedPair(alice);
    expect(pair).to.deep.equal({ local: world().netns.address, remote: world().netns.address });
    await chat(alice, bob, 'hello bob');
    await chat(bob, alice, 'hi alice');
    for (const page of [alice, bob]) await page.waitFor('document.querySelector("#remote-video").videoWidth > 0');
  });

  it('screenshots the demo page mid-call', async () => {
    const png = await screenshotChecked(bob, COMMITTED_SCREENSHOT, world().tmp);
    expect(png.length).to.be.greaterThan(20_000);
  });

  it("moves bob's page to the other node by itself when bob's node drains; the call stays up", async () => {
    const keysBefore = (await bob.keys()).length;
    const status = await world().driver.call<{ code: number | null; ms: number }>('drain', { nodeId: bobNode });
    expect(status.code).to.equal(0);
    await bob.waitFor(`window.demo.nodeId === ${JSON.stringify(aliceNode)} && window.demo.state === "open"`, 20_000);
    expect(await bob.textContent('#node-id')).to.equal(aliceNode);
    expect(await bob.textContent('#state')).to.equal('open');
    expect(await bob.textContent('#signal-log')).to.contain('connection reconnecting');
    expect((await bob.keys()).length).to.be.greaterThan(keysBefore); // a fresh /connect, not a resumed socket
    // Media is peer to peer: losing the signaling node does not end the call.
    for (const page of [alice, bob]) expect(await page.evaluate('window.demo.pcState')).to.equal('connected');
  });

  it('connects a second call after the drain, both peers now on the remaining node', async () => {
    await alice.click('#hangup');
    await bob.waitFor('window.demo.call === null'); // the bye reached bob on his new node
    await alice.waitFor('window.demo.call === null && window.demo.state === "open"');
    await alice.click('#call');
    await expectCallUp();
    await chat(alice, bob, 'hello again bob');
    await chat(bob, alice, 'hi again alice');
  });

  it('never shows a listeningKey, SDP or a candidate in the signaling log', async () => {
    for (const page of [alice, bob]) {
      const log = (await page.textContent('#signal-log')) ?? '';
      const body = await page.evaluate<string>('document.body.innerText');
      // The log did record the exchange, by frame type and direction.
      expect(log).to.match(/→ \w+ +offer|→ \w+ +answer/);
      expect(log).to.match(/candidate/);
      expect(log).to.not.match(SECRET_SHAPES);
      expect(log).to.not.contain(world().netns.address);
      const keys = await page.keys();
      expect(keys.length).to.be.greaterThan(0);
      for (const key of keys) {
        expect(log).to.not.contain(key);
        expect(body).to.not.contain(key);
      }
    }
  });
});
