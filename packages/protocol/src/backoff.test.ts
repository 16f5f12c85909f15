import { expect } from 'chai';
import { Backoff } from './backoff.js';

const top = () => 0.999_999;
const bottom = () => 0;

describe('Backoff', () => {
  it('doubles its ceiling per attempt up to the cap', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000, random: top });
    expect([0, 1, 2, 3, 4, 5].map((n) => backoff.ceiling(n))).to.deep.equal([100, 200, 400, 800, 1000, 1000]);
  });

  it('full jitter spreads each delay over [0, ceiling)', () => {
    expect(new Backoff({ initialMs: 100, maxMs: 1000, random: bottom }).delay(3)).to.equal(0);
    expect(new Backoff({ initialMs: 100, maxMs: 1000, random: top }).delay(3)).to.equal(799);
  });

  it('a jitter of 0.5 keeps each delay in [ceiling/2, ceiling), as socket.io randomizationFactor 0.5', () => {
    expect(new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.5, random: bottom }).delay(2)).to.equal(200);
    expect(new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.5, random: top }).delay(2)).to.equal(399);
  });

  it('no jitter is the plain exponential schedule', () => {
    const backoff = new Backoff({ initialMs: 50, maxMs: 300, jitter: 0 });
    expect([backoff.next(), backoff.next(), backoff.next(), backoff.next()]).to.deep.equal([50, 100, 200, 300]);
  });

  it('counts attempts with next() and starts over after reset()', () => {
    const backoff = new Backoff({ initialMs: 10, maxMs: 1000, jitter: 0 });
    backoff.next();
    backoff.next();
    expect(backoff.attempt).to.equal(2);
    expect(backoff.next()).to.equal(40);
    backoff.reset();
    expect(backoff.attempt).to.equal(0);
    expect(backoff.next()).to.equal(10);
  });

  it('stays finite and capped however many attempts failed', () => {
    const backoff = new Backoff({ initialMs: 1, maxMs: 5000, factor: 10, jitter: 0 });
    expect(backoff.delay(10_000)).to.equal(5000);
  });
});
