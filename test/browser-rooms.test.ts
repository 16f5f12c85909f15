import { expect } from 'chai';
import { useBrowserWorld } from './support/browser-world.js';
import type { RemotePage } from './support/e2e-remote.js';

/** Acceptance 6 of issue 23: a three-page call in one room through the demo page (`?room=`), data channels. */
describe('browser end to end: three Chromium pages in one room hold a mesh call through the demo page', function () {
  this.timeout(90_000);
  const ROOM = 'standup';
  const USERS = ['alice', 'bob', 'carol'] as const;
  let gatewayUrl: string;
  const pages = new Map<string, RemotePage>();

  const world = useBrowserWorld('browser rooms', async () => {
    const states = await Promise.all(
      [...pages.values()].map((p) =>
        p.evaluate<string>('JSON.stringify({members: window.demoRoom.members, channels: window.demoRoom.channels, error: window.demoRoom.error})').catch(() => ''),
      ),
    );
    return `room states:\n${states.join('\n')}`;
  });

  before(async function () {
    this.timeout(60_000);
    const { driver } = world();
    gatewayUrl = (await driver.call<{ gatewayUrl: string }>('start')).gatewayUrl;
    await driver.call('launch', {});
    for (const user of USERS) pages.set(user, await driver.openPage(user));
  });

  const page = (user: string): RemotePage => {
    const found = pages.get(user);
    if (!found) throw new Error(`no page for ${user}`);
    return found;
  };
  const tiles = (p: RemotePage) => p.evaluate<string[]>('[...document.querySelectorAll("#room-tiles .tile")].map((t) => t.dataset.user)');

  it('places the three members on one node, shows three tiles in join order and opens every pair’s data channel', async () => {
    for (const user of USERS) {
      const p = page(user);
      await p.goto(`${gatewayUrl}/?room=${ROOM}`);
      await p.fill('#userId', user);
      await p.click('#connect');
      await p.waitFor(`window.demoRoom.room !== null && window.demoRoom.members.includes(${JSON.stringify(user)})`);
    }
    const nodes = await Promise.all(USERS.map((u) => page(u).evaluate<string>('window.demo.nodeId')));
    expect(new Set(nodes).size, `nodes ${nodes.join(', ')}`).to.equal(1);
    for (const user of USERS) {
      const p = page(user);
      const others = USERS.filter((u) => u !== user);
      await p.waitFor(`${JSON.stringify(others)}.every((peer) => window.demoRoom.channels[peer] === "open")`, 30_000);
      await p.waitFor(`${JSON.stringify(others)}.every((peer) => window.demoRoom.received[peer] === "hello from " + peer)`);
      expect(await tiles(p)).to.deep.equal([...USERS]);
      expect(await p.textContent('#room-tiles')).to.contain(`${user} (you)`);
    }
    // The newcomer offered: alice (first) never sent an offer, carol (last) sent one to each of the others.
    const offersBy = (user: string) => page(user).evaluate<string[]>('window.demo.signals.filter((s) => s.direction === "out" && s.type === "offer").map((s) => s.peer)');
    expect(await offersBy('alice')).to.deep.equal([]);
    expect(await offersBy('bob')).to.deep.equal(['alice']);
    expect((await offersBy('carol')).sort()).to.deep.equal(['alice', 'bob']);
  });

  it('closing one page removes its tile from the others and closes their peer connections to it', async () => {
    await page('carol').close();
    pages.delete('carol');
    for (const user of ['alice', 'bob']) {
      const p = page(user);
      await p.waitFor('window.demoRoom.members.length === 2 && !window.demoRoom.mesh.calls.has("carol")', 20_000);
      expect(await tiles(p)).to.deep.equal(['alice', 'bob']);
      expect(await p.evaluate('window.demoRoom.channels.bob ?? window.demoRoom.channels.alice')).to.equal('open');
    }
  });
});
