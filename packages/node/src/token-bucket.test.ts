import { expect } from 'chai';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', function () {
  it('allows the burst, then the rate', function () {
    const bucket = new TokenBucket(10, 5, 5000, 0);
    const first = Array.from({ length: 7 }, () => bucket.take(0));
    expect(first).to.deep.equal(['ok', 'ok', 'ok', 'ok', 'ok', 'limited', 'limited']);
    expect(bucket.take(100)).to.equal('ok'); // 100 ms at 10/s refills one token
    expect(bucket.take(100)).to.equal('limited');
  });

  it('reports abuse only after 5 s far over the rate', function () {
    const bucket = new TokenBucket(10, 10, 5000, 0);
    let verdict = 'ok';
    let at = 0;
    for (; at <= 6000 && verdict !== 'abusive'; at += 10) for (let i = 0; i < 3; i += 1) verdict = bucket.take(at);
    expect(verdict).to.equal('abusive');
    expect(at).to.be.within(5000, 5100);
  });

  it('does not report abuse for a sender slightly over its rate', function () {
    const bucket = new TokenBucket(100, 100, 5000, 0);
    let abusive = false;
    // 150/s against 100/s for 10 s: rate limited all along, but not "far over" (2× the rate).
    for (let at = 0; at <= 10_000; at += 20) for (let i = 0; i < 3; i += 1) if (bucket.take(at) === 'abusive') abusive = true;
    expect(abusive).to.equal(false);
  });
});
