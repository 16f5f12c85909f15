import { expect } from 'chai';
import { FORCE_EXIT_AFTER_MS, shutdownSignalHandler } from './lifecycle.js';

function harness() {
  let now = 0;
  const stops: NodeJS.Signals[] = [];
  const exits: number[] = [];
  let finish: (() => void) | undefined;
  const handler = shutdownSignalHandler({
    stop: (signal) => {
      stops.push(signal);
      return new Promise<void>((resolve) => (finish = resolve));
    },
    onFailure: () => {},
    exit: (code) => exits.push(code),
    now: () => now,
  });
  return {
    handler,
    stops,
    exits,
    advance: (ms: number) => (now += ms),
    finishStop: async () => {
      finish?.();
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

describe('shutdown signals', () => {
  it("stops once and exits 0 when the group's SIGINT and the supervisor's SIGTERM both arrive", async () => {
    const h = harness();
    h.handler('SIGINT');
    h.advance(5);
    h.handler('SIGTERM');
    h.advance(3000); // a supervisor may forward its signal only after stopping other children
    h.handler('SIGTERM');
    expect(h.stops).to.deep.equal(['SIGINT']);
    expect(h.exits).to.deep.equal([]);
    await h.finishStop();
    expect(h.exits).to.deep.equal([0]);
  });

  it('ignores the same signal forwarded right after the first (npx passes Ctrl-C on to its child)', async () => {
    const h = harness();
    h.handler('SIGINT');
    h.advance(FORCE_EXIT_AFTER_MS - 1);
    h.handler('SIGINT');
    expect(h.exits).to.deep.equal([]);
    await h.finishStop();
    expect(h.exits).to.deep.equal([0]);
  });

  it('exits at once with 1 on the same signal a second later (Ctrl-C pressed again during a drain)', () => {
    const h = harness();
    h.handler('SIGINT');
    h.advance(FORCE_EXIT_AFTER_MS);
    h.handler('SIGINT');
    expect(h.exits).to.deep.equal([1]);
    expect(h.stops).to.have.length(1);
  });

  it('exits 1 when stopping fails', async () => {
    const failures: unknown[] = [];
    const exits: number[] = [];
    const handler = shutdownSignalHandler({
      stop: () => Promise.reject(new Error('drain failed')),
      onFailure: (error) => failures.push(error),
      exit: (code) => exits.push(code),
    });
    handler('SIGTERM');
    await new Promise((resolve) => setImmediate(resolve));
    expect(exits).to.deep.equal([1]);
    expect(String(failures[0])).to.contain('drain failed');
  });
});
