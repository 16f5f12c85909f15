import { expect } from 'chai';
import { CLOSE_CODES } from '@messaging-server/protocol';
import { DEFAULT_RECONNECT, nextAction, reconnectSchedule } from './policy.js';

const max = () => 0.999_999;
const min = () => 0;
const schedule = (random: () => number) => reconnectSchedule({}, random);

describe('reconnect policy', () => {
  it('reconnects at once, jittered, after a drain (4000) on a working connection', () => {
    const action = nextAction(CLOSE_CODES.node_shutdown, 0, schedule(max));
    expect(action).to.deep.include({ reconnect: true, avoid: [] });
    if (!action.reconnect) throw new Error('expected a reconnect');
    expect(action.delayMs).to.be.lessThan(DEFAULT_RECONNECT.reconnectionDelayAfterDrain);
  });

  it('falls back to the normal backoff when drain closes repeat', () => {
    const action = nextAction(CLOSE_CODES.node_shutdown, 6, schedule(max));
    if (!action.reconnect) throw new Error('expected a reconnect');
    expect(action.delayMs).to.be.greaterThan(DEFAULT_RECONNECT.reconnectionDelayAfterDrain);
  });

  for (const code of [CLOSE_CODES.session_expired, CLOSE_CODES.store_unavailable, CLOSE_CODES.idle_timeout, 4499]) {
    it(`reconnects with backoff and no avoid list after ${code}`, () => {
      const delays = reconnectSchedule({}, max).backoff;
      for (let attempt = 0; attempt < 12; attempt++) {
        const action = nextAction({ kind: 'close', code, nodeId: 'node-a' }, attempt, schedule(max));
        if (!action.reconnect) throw new Error('expected a reconnect');
        expect(action.avoid).to.deep.equal([]);
        expect(action.delayMs).to.be.within(delays.ceiling(attempt) - 1, delays.ceiling(attempt));
      }
    });
  }

  it('reconnects with backoff and avoids a full node (4003)', () => {
    const action = nextAction({ kind: 'close', code: CLOSE_CODES.node_full, nodeId: 'node-a' }, 0, schedule(max));
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
      const action = nextAction({ kind: 'close', code, nodeId: 'node-a' }, 0, schedule(min));
      expect(action).to.deep.equal({ reconnect: true, delayMs: 0, avoid: ['node-a'] });
    }
  });

  it('avoids the node after a handshake or ping timeout', () => {
    expect(nextAction({ kind: 'network', nodeId: 'node-b' }, 2, schedule(min))).to.deep.equal({
      reconnect: true,
      delayMs: 0,
      avoid: ['node-b'],
    });
    expect(nextAction({ kind: 'network' }, 2, schedule(min))).to.deep.include({ avoid: [] });
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

describe('reconnect schedule (socket.io-shaped options on the shared Backoff)', () => {
  it('doubles its ceiling per attempt from reconnectionDelay up to reconnectionDelayMax', () => {
    const { backoff } = reconnectSchedule({}, max);
    const ceilings = Array.from({ length: 10 }, (_, attempt) => backoff.ceiling(attempt));
    expect(ceilings).to.deep.equal([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000]);
    expect(backoff.ceiling(1000)).to.equal(10_000);
    const custom = reconnectSchedule({ reconnectionDelay: 100, reconnectionDelayMax: 300 }, max).backoff;
    expect([0, 1, 2, 3].map((n) => custom.ceiling(n))).to.deep.equal([100, 200, 300, 300]);
  });

  it('spreads delays over the whole [0, ceiling) range by default (full jitter)', () => {
    let seed = 42;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const { backoff } = reconnectSchedule({}, random);
    for (let attempt = 0; attempt < 8; attempt++) {
      const delays = Array.from({ length: 400 }, () => backoff.delay(attempt));
      const ceiling = backoff.ceiling(attempt);
      expect(Math.min(...delays)).to.be.at.least(0);
      expect(Math.max(...delays)).to.be.below(ceiling);
      expect(Math.min(...delays)).to.be.below(ceiling * 0.1);
      expect(Math.max(...delays)).to.be.above(ceiling * 0.9);
    }
  });

  it('randomizationFactor narrows the spread: 0.5 keeps delays in [ceiling/2, ceiling), 0 makes them exact', () => {
    const half = (random: () => number) => reconnectSchedule({ randomizationFactor: 0.5 }, random).backoff;
    expect(half(min).delay(2)).to.equal(500);
    expect(half(max).delay(2)).to.equal(999);
    const exact = reconnectSchedule({ randomizationFactor: 0 }, max).backoff;
    expect([0, 1, 2].map((n) => exact.delay(n))).to.deep.equal([250, 500, 1000]);
  });

  it('reconnectionDelayAfterDrain caps the quick return after a drain', () => {
    const action = nextAction(CLOSE_CODES.node_shutdown, 0, reconnectSchedule({ reconnectionDelayAfterDrain: 40 }, max));
    expect(action).to.deep.equal({ reconnect: true, delayMs: 39, avoid: [] });
  });
});
