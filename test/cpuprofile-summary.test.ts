// A module's inclusive share of a CPU profile (profile.ts's node authentication figure) on a hand-made profile: a
// sample with the module's frames twice on its stack counts once, idle time is not busy time, time outside the module
// (its callers, garbage collection) is not counted, and a span keeps only the samples inside it.
import { expect } from 'chai';
import { inclusiveShare, type CpuProfile } from '@messaging-server/harness/bench/cpuprofile-summary';

const MODULE = 'file:///repo/packages/core/src/node-identity.ts';
const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });

/**
 * (root) 1 ─ send 2 (other module) ─ headers 3 (module) ─ createHmac 4 (node:crypto) ─ mac 5 (module)
 *        ├ (idle) 6
 *        ├ (garbage collector) 7
 *        └ verify 8 (module)
 */
const PROFILE: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)', ''), children: [2, 6, 7, 8] },
    { id: 2, callFrame: frame('send', 'file:///repo/packages/core/src/undici-peer-transport.ts'), children: [3] },
    { id: 3, callFrame: frame('headers', MODULE), children: [4] },
    { id: 4, callFrame: frame('createHmac', 'node:crypto'), children: [5] },
    { id: 5, callFrame: frame('mac', MODULE) },
    { id: 6, callFrame: frame('(idle)', '') },
    { id: 7, callFrame: frame('(garbage collector)', '') },
    { id: 8, callFrame: frame('verify', MODULE) },
  ],
  // Sample i is taken at startTime + the sum of timeDeltas up to and including i: 100, 300, 600, 1000, …
  samples: [4, 5, 3, 2, 6, 7, 8, 5],
  timeDeltas: [100, 200, 300, 400, 500, 600, 700, 800],
  startTime: 0,
  endTime: 3600,
};

const inModule = (url: string): boolean => url === MODULE;

describe('inclusiveShare (cpuprofile-summary)', () => {
  it('counts each busy sample once when a frame of the module is anywhere on its stack, by the outermost one', () => {
    const s = inclusiveShare(PROFILE, inModule);
    // Busy: everything but the idle sample (500). In the module: 4, 5, 3 (under headers), 8 and 5 again.
    expect(s.busyMs).to.equal((3600 - 500) / 1000);
    expect(s.ms).to.equal((100 + 200 + 300 + 700 + 800) / 1000);
    expect(s.share).to.be.closeTo(2100 / 3100, 1e-12);
    expect(s.byEntry).to.deep.equal([
      { fn: 'headers', ms: 1.4, share: 1400 / 3100 },
      { fn: 'verify', ms: 0.7, share: 700 / 3100 },
    ]);
  });

  it('keeps only the samples inside a span of the profile clock', () => {
    // Samples at 1000 (send), 1500 (idle), 2100 (garbage collector) and 2800 (verify) are inside.
    const s = inclusiveShare(PROFILE, inModule, { startUs: 1000, endUs: 2800 });
    expect(s.busyMs).to.equal((400 + 600 + 700) / 1000);
    expect(s.ms).to.equal(0.7);
    expect(s.byEntry.map((e) => e.fn)).to.deep.equal(['verify']);
  });

  it('is zero, not NaN, when nothing is busy or nothing matches', () => {
    expect(inclusiveShare(PROFILE, () => false).share).to.equal(0);
    expect(inclusiveShare(PROFILE, inModule, { startUs: 1400, endUs: 1600 })).to.deep.include({ busyMs: 0, ms: 0, share: 0 });
  });
});
