import { expect } from 'chai';
import { CLOSE_CODES } from '@messaging-server/protocol';
import { backoffCeiling, backoffDelay, DEFAULT_BACKOFF, nextAction } from './policy.js';

const max = () => 0.999_999;
const min = () => 0;

describe('reconnect policy', () => {
  it('reconnects at once, jittered, after a drain (4000) on a working connection', () => {
    const action = nextAction(4000, 0, DEFAULT_BACKOFF, max);
    expect(action).to.deep.include({ reconnect: true, avoid: [] });
    if (!action.reconnect) throw new Error('expected a reconnect');
    expect(action.delayMs).to.be.lessThan(DEFAULT_BACKOFF.drainJitterMs);
  });

  it('falls back to the normal backoff when drain closes repeat', () => {
    const action = nextAction(4000, 6, DEFAULT_BACKOFF, max);
    if (!action.reconnect) throw new Error('expected a reconnect');
    expect(action.delayMs).to.be.greaterThan(DEFAULT_BACKOFF.drainJitterMs);
  });

  for (const code of [4001, 4002, 4499]) {
    it(`reconnects with backoff and no avoid list after ${code}`, () => {
      for (let attempt = 0; attempt < 12; attempt++) {
        const action = nextAction({ kind: 'close', code, nodeId: 'node-a' }, attempt, DEFAULT_BACKOFF, max);
        if (!action.reconnect) throw new Error('expected a reconnect');
        expect(action.avoid).to.deep.equal([]);
        expect(action.delayMs).to.be.within(backoffCeiling(attempt) - 1, backoffCeiling(attempt));
      }
    });
  }

  it('reconnects with backoff and avoids a full node (4003)', () => {
    const action = nextAction({ kind: 'close', code: CLOSE_CODES.node_full, nodeId: 'node-a' }, 0, DEFAULT_BACKOFF, max);
    expect(action).to.deep.include({ reconnect: true, avoid: ['node-a'] });
  });

  for (const [reason, code] of Object.entries(CLOSE_CODES).filter(([, c]) => c >= 4500)) {
    it(`stops with reason ${reason} on ${code}`, () => {
      expect(nextAction(code, 0)).to.deep.equal({ reconnect: false, reason, code });
    });
  }

  it('stops on an unknown terminal code with a generic reason', () => {
    expect(nextAction(4999, 3)).to.deep.equal({ reconnect: false, reason: 'unknown_close', code: 4999 });
  });

  it('avoids the node after a close without a contract code (network loss)', () => {
    for (const code of [1006, 1002, 2000, 1000]) {
      const action = nextAction({ kind: 'close', code, nodeId: 'node-a' }, 0, DEFAULT_BACKOFF, min);
      expect(action).to.deep.equal({ reconnect: true, delayMs: 0, avoid: ['node-a'] });
    }
  });

  it('avoids the node after a handshake or ping timeout', () => {
    expect(nextAction({ kind: 'network', nodeId: 'node-b' }, 2, DEFAULT_BACKOFF, min)).to.deep.equal({
      reconnect: true,
      delayMs: 0,
      avoid: ['node-b'],
    });
    expect(nextAction({ kind: 'network' }, 2, DEFAULT_BACKOFF, min)).to.deep.include({ avoid: [] });
  });

  it('stops on a 4xx from /connect but retries 429, 5xx and an unreachable gateway', () => {
    for (const status of [400, 401, 409, 413, 415]) {
      expect(nextAction({ kind: 'http', status }, 0)).to.deep.equal({
        reconnect: false,
        reason: 'connect_rejected',
        code: status,
      });
    }
    for (const status of [429, 500, 502, 503]) {
      expect(nextAction({ kind: 'http', status }, 0)).to.have.property('reconnect', true);
    }
    expect(nextAction({ kind: 'gateway-unreachable' }, 0)).to.have.property('reconnect', true);
  });
});

describe('backoff', () => {
  it('doubles its ceiling per attempt from the base up to the maximum', () => {
    const ceilings = Array.from({ length: 10 }, (_, attempt) => backoffCeiling(attempt));
    expect(ceilings).to.deep.equal([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000]);
    expect(backoffCeiling(1000)).to.equal(10_000);
    expect(backoffCeiling(2, { baseMs: 100, maxMs: 300, drainJitterMs: 0 })).to.equal(300);
  });

  it('spreads delays over the whole [0, ceiling) range (full jitter)', () => {
    let seed = 42;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    for (let attempt = 0; attempt < 8; attempt++) {
      const delays = Array.from({ length: 400 }, () => backoffDelay(attempt, DEFAULT_BACKOFF, random));
      const ceiling = backoffCeiling(attempt);
      expect(Math.min(...delays)).to.be.at.least(0);
      expect(Math.max(...delays)).to.be.below(ceiling);
      expect(Math.min(...delays)).to.be.below(ceiling * 0.1);
      expect(Math.max(...delays)).to.be.above(ceiling * 0.9);
    }
  });
});
