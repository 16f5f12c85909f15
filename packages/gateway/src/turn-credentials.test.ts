import { expect } from 'chai';
import { createHmac } from 'node:crypto';
import { startHarness } from './harness.test.js';
import { iceServersFor, turnCredentials } from './turn-credentials.js';

describe('TURN REST credentials', () => {
  it('signs "<expiry>:<userId>" with HMAC-SHA1 of the shared secret, base64, as coturn use-auth-secret expects', () => {
    const { username, credential } = turnCredentials('north', 'alice', 1_700_000_000);
    expect(username).to.equal('1700000000:alice');
    // The same computation coturn does (and turnutils_uclient with -W), written out independently.
    const expected = createHmac('sha1', Buffer.from('north', 'utf8')).update(Buffer.from('1700000000:alice')).digest().toString('base64');
    expect(credential).to.equal(expected);
    expect(Buffer.from(credential, 'base64')).to.have.length(20);
  });

  it('hands out STUN URLs as they are and TURN URLs with credentials valid for the TTL from now', () => {
    const servers = iceServersFor('bob', {
      urls: ['stun:stun.example:3478', 'turn:turn.example:3478?transport=udp', 'turns:turn.example:5349'],
      secret: 'north',
      ttlSeconds: 600,
      now: () => 1_700_000_000_500,
    });
    expect(servers).to.deep.equal([
      { urls: ['stun:stun.example:3478'] },
      {
        urls: ['turn:turn.example:3478?transport=udp', 'turns:turn.example:5349'],
        ...turnCredentials('north', 'bob', 1_700_000_600),
      },
    ]);
  });

  it('adds nothing to the /connect answer when no servers are configured', () => {
    expect(iceServersFor('bob', { urls: [], ttlSeconds: 600 })).to.equal(undefined);
  });
});

describe('gateway POST /connect with TURN configured', () => {
  it("answers with iceServers holding this user's TURN credentials, valid for MSG_TURN_TTL_SECONDS", async () => {
    const h = await startHarness({
      env: { MSG_TURN_URLS: 'stun:10.0.0.9:3478,turn:10.0.0.9:3478', MSG_TURN_SECRET: 'north', MSG_TURN_TTL_SECONDS: '3600' },
    });
    try {
      await h.addNode('node-a');
      const before = Math.floor(Date.now() / 1000);
      const { status, body } = await h.connect('alice');
      expect(status).to.equal(200);
      const [stun, turn] = body['iceServers'] as { urls: string[]; username?: string; credential?: string }[];
      expect(stun).to.deep.equal({ urls: ['stun:10.0.0.9:3478'] });
      expect(turn?.urls).to.deep.equal(['turn:10.0.0.9:3478']);
      const [expiry, user] = String(turn?.username).split(':');
      expect(user).to.equal('alice');
      expect(Number(expiry)).to.be.within(before + 3600, before + 3602);
      expect(turn?.credential).to.equal(turnCredentials('north', 'alice', Number(expiry)).credential);
      // The session record in memcached never holds them.
      expect(await h.store.inner.get('alice')).to.not.have.property('iceServers');
    } finally {
      await h.close();
    }
  });
});
