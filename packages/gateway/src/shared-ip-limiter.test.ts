import { expect } from 'chai';
import { MemoryWindowCounter, type WindowCounter } from '@messaging-server/core';
import { SharedIpLimiter } from './shared-ip-limiter.js';

describe('SharedIpLimiter', () => {
  it('counts every take against the shared counter, per key and per minute', async () => {
    let now = 120_000;
    const counter = new MemoryWindowCounter(() => now);
    // Two gateways, one counter: what memcached is to the processes.
    const [a, b] = [0, 1].map(() => new SharedIpLimiter({ perMinute: 3, counter, now: () => now })) as [SharedIpLimiter, SharedIpLimiter];
    expect([await a.take('ip1'), await b.take('ip1'), await a.take('ip1')]).to.deep.equal([0, 0, 0]);
    now += 20_000;
    expect(await b.take('ip1')).to.equal(40);
    expect(await a.take('ip2')).to.equal(0);
    now = 180_000;
    expect(await b.take('ip1')).to.equal(0);
  });

  it('decides alone with its own bucket when the counter fails or is late, and reports it', async () => {
    let fallbacks = 0;
    const failing: WindowCounter = { increment: () => Promise.reject(new Error('down')) };
    const late: WindowCounter = { increment: () => new Promise((resolve) => setTimeout(() => resolve(1), 500)) };
    for (const counter of [failing, late]) {
      const limiter = new SharedIpLimiter({ perMinute: 2, counter, timeoutMs: 20, onFallback: () => (fallbacks += 1) });
      expect([await limiter.take('ip'), await limiter.take('ip')]).to.deep.equal([0, 0]);
      expect(await limiter.take('ip')).to.be.greaterThan(0);
    }
    expect(fallbacks).to.equal(6);
  });
});
