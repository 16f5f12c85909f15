import { expect } from 'chai';
import { waitFor } from './wait-for.js';

describe('waitFor', () => {
  const notYets: [string, unknown][] = [['false', false], ['undefined', undefined], ['null', null], ['0', 0], ['NaN', Number.NaN], ["''", '']];
  for (const [label, notYet] of notYets) {
    it(`treats ${label} as "not yet" and times out`, async () => {
      const error = await waitFor(() => notYet, { timeoutMs: 30, intervalMs: 5, what: 'a real answer' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(Error);
      expect((error as Error).message).to.equal('timed out after 30 ms waiting for a real answer');
    });
  }

  it('returns the first truthy value, polling until it comes', async () => {
    let calls = 0;
    const value = await waitFor(() => (++calls >= 3 ? { calls } : 0), { intervalMs: 1 });
    expect(value).to.deep.equal({ calls: 3 });
  });

  it('counts a throwing probe as "not yet" and names its last error on timeout', async () => {
    const error = await waitFor(
      () => {
        throw new Error('still down');
      },
      { timeoutMs: 20, intervalMs: 5 },
    ).catch((e: unknown) => e as Error);
    expect(error?.message).to.equal('timed out after 20 ms waiting for condition: last error: still down');
  });
});
