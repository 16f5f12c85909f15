import { expect } from 'chai';
import { useBrowserWorld } from './support/browser-world.js';
import type { RemotePage } from './support/e2e-remote.js';

const SECRET = 'turn-e2e-shared-secret';
const TTL_SECONDS = 600;

interface CallError {
  code: string;
  message: string;
}

/**
 * Issue 15, acceptance 3: calls behind NAT. Both pages allow only relayed ICE candidates (`?relay=1`, i.e.
 * `iceTransportPolicy: "relay"`), so a call can only connect through TURN, with the credentials /connect handed out.
 */
describe('browser end to end: a relay-only call through real coturn with TURN credentials from /connect', function () {
  this.timeout(60_000);
  let gatewayUrl: string;
  let turnUrl: string;
  let alice: RemotePage;
  let bob: RemotePage;

  const world = useBrowserWorld('turn e2e');

  before(async function () {
    this.timeout(60_000);
    const { driver } = world();
    turnUrl = (await driver.call<{ url: string }>('turn', { secret: SECRET })).url;
    const env = { MSG_TURN_URLS: turnUrl, MSG_TURN_SECRET: SECRET, MSG_TURN_TTL_SECONDS: String(TTL_SECONDS) };
    gatewayUrl = (await driver.call<{ gatewayUrl: string }>('start', { env })).gatewayUrl;
    await driver.call('launch', {});
    alice = await driver.openPage('alice');
    bob = await driver.openPage('bob');
  });

  async function connect(page: RemotePage, userId: string): Promise<void> {
    await page.goto(`${gatewayUrl}/?relay=1`);
    await page.fill('#userId', userId);
    await page.click('#connect');
    await page.waitFor('window.demo.state === "open"');
  }

  it('hands each user TURN credentials for itself with the session: "<expiry>:<userId>", valid for the TTL', async () => {
    await connect(alice, 'alice');
    await connect(bob, 'bob');
    for (const [page, userId] of [[alice, 'alice'], [bob, 'bob']] as const) {
      const servers = await page.evaluate<{ urls: string[]; username: string; credential: string }[]>('window.demo.client.iceServers');
      expect(servers).to.have.length(1);
      expect(servers[0]?.urls).to.deep.equal([turnUrl]);
      const [expiry, user] = String(servers[0]?.username).split(':');
      expect(user).to.equal(userId);
      expect(Number(expiry) - Date.now() / 1000).to.be.within(TTL_SECONDS - 30, TTL_SECONDS + 1);
      expect(servers[0]?.credential).to.match(/^[A-Za-z0-9+/]{27}=$/); // base64 of a 20-byte HMAC-SHA1
    }
  });

  it('connects the call through the TURN relay, chat included, and the demo shows the relayed path', async () => {
    await alice.fill('#peer', 'bob');
    await alice.click('#call');
    for (const page of [alice, bob]) {
      await page.waitFor('window.demo.pcState === "connected" && window.demo.channelState === "open"', 20_000);
      await page.waitFor('window.demo.path !== null');
      expect(await page.evaluate('window.demo.path')).to.deep.equal({
        local: { type: 'relay', protocol: 'udp', relayProtocol: 'udp' },
        remote: { type: 'relay', protocol: 'udp' },
      });
      expect(await page.textContent('#ice-path')).to.equal('relay ↔ relay (udp), through TURN');
    }
    await alice.fill('#chat-input', 'over the relay');
    await alice.press('#chat-input', 'Enter');
    await bob.waitFor('window.demo.lastChannelMessage === "over the relay"');
    // coturn itself saw both users allocate with the gateway's credentials.
    const { turnLogs } = await world().driver.call<{ turnLogs: string }>('diagnostics');
    expect(turnLogs).to.match(/\d+:alice/).and.to.match(/\d+:bob/);
  });

  it('fails with TURN_UNAUTHORIZED in the SDK and on the demo page when the TURN server has another secret', async () => {
    await alice.click('#hangup');
    await bob.waitFor('window.demo.call === null');
    await world().driver.call('turn', { secret: 'not-the-gateway-secret' });
    await alice.click('#call');
    for (const page of [alice, bob]) {
      await page.waitFor('window.demo.callErrors.some((e) => e.code === "TURN_UNAUTHORIZED")', 20_000);
      const errors = await page.evaluate<CallError[]>('window.demo.callErrors');
      expect(errors.find((e) => e.code === 'TURN_UNAUTHORIZED')?.message).to.match(
        new RegExp(`^TURN server ${turnUrl.replace(/[?.]/g, '\\$&')} refused the credentials \\(401`),
      );
      expect(await page.textContent('#error')).to.match(/^TURN_UNAUTHORIZED: TURN server turn:.* refused the credentials/);
      expect(await page.evaluate('window.demo.pcState')).to.not.equal('connected');
    }
  });
});
