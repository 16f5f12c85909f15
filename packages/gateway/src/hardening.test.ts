import { expect } from 'chai';
import { ClientIpResolver, ipLimitKey } from './client-ip.js';
import { IpRateLimiter } from './ip-rate-limiter.js';
import { NodeView } from './node-view.js';
import { nodeRecord, startHarness, type Harness } from './harness.test.js';

describe('gateway hardening', () => {
  describe('ClientIpResolver', () => {
    it('ignores X-Forwarded-For unless the peer is a trusted proxy', () => {
      const none = new ClientIpResolver();
      expect(none.resolve('203.0.113.9', '1.2.3.4')).to.equal('203.0.113.9');
      const resolver = new ClientIpResolver(['10.0.0.0/8', '::1']);
      expect(resolver.resolve('203.0.113.9', '1.2.3.4')).to.equal('203.0.113.9');
      expect(resolver.resolve('::ffff:10.1.2.3', '198.51.100.7')).to.equal('198.51.100.7');
      expect(resolver.resolve('::1', '198.51.100.7, 10.0.0.5')).to.equal('198.51.100.7');
    });

    it('takes the rightmost untrusted hop, so a client cannot choose its address', () => {
      const resolver = new ClientIpResolver(['10.0.0.0/8']);
      // The client sent "X-Forwarded-For: 1.1.1.1"; the proxy appended the real address.
      expect(resolver.resolve('10.0.0.2', '1.1.1.1, 198.51.100.7')).to.equal('198.51.100.7');
      expect(resolver.resolve('10.0.0.2', ['garbage', '198.51.100.7'])).to.equal('198.51.100.7');
      expect(resolver.resolve('10.0.0.2', 'garbage')).to.equal('10.0.0.2');
    });
  });

  describe('IpRateLimiter', () => {
    it('allows perMinute at once, then refills evenly, per IP', () => {
      let now = 0;
      const limiter = new IpRateLimiter(6, 100, () => now);
      for (let i = 0; i < 6; i += 1) expect(limiter.take('a')).to.equal(0);
      expect(limiter.take('a')).to.equal(10);
      expect(limiter.take('b')).to.equal(0);
      now += 10_000;
      expect(limiter.take('a')).to.equal(0);
      expect(limiter.take('a')).to.be.greaterThan(0);
    });

    it('keeps at most maxEntries addresses, forgetting the least recently seen', () => {
      const limiter = new IpRateLimiter(1, 1000);
      for (let i = 0; i < 50_000; i += 1) limiter.take(`ip-${String(i)}`);
      expect(limiter.size).to.equal(1000);
    });
  });

  describe('allocation with node capacity', () => {
    it('skips a node whose load reached its maxConnections, and has no node when all are full', () => {
      const view = new NodeView();
      const at = new Date().toISOString();
      view.apply({
        type: 'snapshot',
        entries: [
          { kind: 'node', id: 'a', value: nodeRecord('a') },
          { kind: 'node', id: 'b', value: nodeRecord('b') },
          { kind: 'load', id: 'a', value: { connections: 2, pending: 0, updatedAt: at, maxConnections: 2 } },
          { kind: 'load', id: 'b', value: { connections: 5, pending: 0, updatedAt: at, maxConnections: 7 } },
        ],
      });
      expect(view.allocate()?.nodeId).to.equal('b');
      expect(view.allocate()?.nodeId).to.equal('b');
      expect(view.allocate()).to.equal(undefined);
    });
  });

  describe('POST /connect', () => {
    let harness: Harness | undefined;
    afterEach(async () => {
      await harness?.close();
      harness = undefined;
    });

    it('answers 429 RATE_LIMITED with Retry-After past the per-IP limit', async () => {
      harness = await startHarness({ env: { MSG_CONNECT_RATE_PER_IP_PER_MINUTE: '3' } });
      await harness.addNode('node-a');
      for (let i = 0; i < 3; i += 1) expect((await harness.connect(`u${String(i)}`)).status).to.equal(200);
      const response = await harness.post({ userId: 'u9' }, { 'content-type': 'application/json' });
      expect(response.status).to.equal(429);
      expect(response.headers.get('retry-after')).to.match(/^\d+$/);
      expect(await response.json()).to.deep.include({ error: { code: 'RATE_LIMITED', message: 'too many /connect requests from this address' } });
      // X-Forwarded-For from an untrusted peer changes nothing.
      const spoofed = await harness.post({ userId: 'u9' }, { 'content-type': 'application/json', 'x-forwarded-for': '198.51.100.1' });
      expect(spoofed.status).to.equal(429);
    });

    it('counts the forwarded client address when the peer is a trusted proxy', async () => {
      harness = await startHarness({ env: { MSG_CONNECT_RATE_PER_IP_PER_MINUTE: '1', MSG_TRUSTED_PROXIES: '127.0.0.1' } });
      await harness.addNode('node-a');
      const as = (ip: string) => harness!.post({ userId: 'u' }, { 'content-type': 'application/json', 'x-forwarded-for': ip });
      expect((await as('198.51.100.1')).status).to.equal(200);
      expect((await as('198.51.100.2')).status).to.equal(200);
      expect((await as('198.51.100.1')).status).to.equal(429);
    });

    it('counts an IPv6 client by its /64, which one subscriber usually holds whole', async () => {
      harness = await startHarness({ env: { MSG_CONNECT_RATE_PER_IP_PER_MINUTE: '1', MSG_TRUSTED_PROXIES: '127.0.0.1' } });
      await harness.addNode('node-a');
      const as = (ip: string) => harness!.post({ userId: 'u' }, { 'content-type': 'application/json', 'x-forwarded-for': ip });
      expect((await as('2001:db8:1:2::1')).status).to.equal(200);
      expect((await as('2001:db8:1:2:ffff:ffff:ffff:ffff')).status).to.equal(429);
      expect((await as('2001:0db8:0001:0002:0:0:0:99')).status).to.equal(429);
      expect((await as('2001:db8:1:3::1')).status).to.equal(200);
      expect(ipLimitKey('2001:db8::1')).to.equal('2001:db8:0:0::/64');
      expect(ipLimitKey('::ffff:10.0.0.1')).to.equal('10.0.0.1');
      expect(ipLimitKey('10.0.0.1')).to.equal('10.0.0.1');
    });

    it('counts an IPv4 client as its IPv4 address when it arrives hex-mapped or through NAT64 (64:ff9b::/96)', async () => {
      harness = await startHarness({ env: { MSG_CONNECT_RATE_PER_IP_PER_MINUTE: '1', MSG_TRUSTED_PROXIES: '127.0.0.1' } });
      await harness.addNode('node-a');
      const as = (ip: string) => harness!.post({ userId: 'u' }, { 'content-type': 'application/json', 'x-forwarded-for': ip });
      expect((await as('192.0.2.1')).status).to.equal(200);
      for (const same of ['64:ff9b::c000:201', '64:ff9b::192.0.2.1', '::ffff:c000:201', '0:0:0:0:0:ffff:c000:0201', '::FFFF:192.0.2.1'])
        expect((await as(same)).status, same).to.equal(429);
      // Other IPv4 clients behind the same NAT64 prefix are other clients, not one shared /64.
      expect((await as('64:ff9b::c000:202')).status).to.equal(200);
      expect((await as('64:ff9b::c633:6407')).status).to.equal(200);
      expect(ipLimitKey('64:ff9b::a00:1')).to.equal('10.0.0.1');
      expect(ipLimitKey('::ffff:a00:1')).to.equal('10.0.0.1');
      expect(ipLimitKey('64:ff9b:0:1::a00:1')).to.equal('64:ff9b:0:1::/64');
      expect(ipLimitKey('::1')).to.equal('0:0:0:0::/64');
    });

    it('reflects an allowed Origin and refuses another with 403 ORIGIN_NOT_ALLOWED', async () => {
      harness = await startHarness({ env: { MSG_ALLOWED_ORIGINS: 'https://app.example.com' } });
      await harness.addNode('node-a');
      const ok = await harness.post({ userId: 'u1' }, { 'content-type': 'application/json', origin: 'https://app.example.com' });
      expect(ok.status).to.equal(200);
      expect(ok.headers.get('access-control-allow-origin')).to.equal('https://app.example.com');
      expect(ok.headers.get('vary')).to.match(/origin/i);
      const evil = await harness.post({ userId: 'u2' }, { 'content-type': 'application/json', origin: 'https://evil.example.com' });
      expect(evil.status).to.equal(403);
      expect(evil.headers.get('access-control-allow-origin')).to.equal(null);
      expect(await evil.json()).to.deep.equal({ error: { code: 'ORIGIN_NOT_ALLOWED', message: 'origin is not allowed' } });
      const noOrigin = await harness.post({ userId: 'u3' }, { 'content-type': 'application/json' });
      expect(noOrigin.status).to.equal(200);
    });

    it('answers * by default', async () => {
      harness = await startHarness();
      await harness.addNode('node-a');
      const response = await harness.post({ userId: 'u1' }, { 'content-type': 'application/json', origin: 'https://any.example' });
      expect(response.headers.get('access-control-allow-origin')).to.equal('*');
    });
  });
});
