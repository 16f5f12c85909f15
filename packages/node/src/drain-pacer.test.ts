import { expect } from 'chai';
import { closePaced } from './drain-pacer.js';

interface Fake {
  id: number;
  open: boolean;
  busyUntilMs: number;
}

function fakes(n: number): Fake[] {
  return Array.from({ length: n }, (_, id) => ({ id, open: true, busyUntilMs: 0 }));
}

describe('closePaced', function () {
  it('closes everyone at about the given rate, in random order', async function () {
    const all = fakes(100);
    const closedAt: number[] = [];
    const started = Date.now();
    await closePaced<Fake>({
      open: () => all.filter((c) => c.open),
      isOpen: (c) => c.open,
      ready: () => true,
      close: (c) => {
        c.open = false;
        closedAt.push(Date.now() - started);
      },
      ratePerSecond: 200,
      deadline: Date.now() + 10_000,
      done: () => all.every((c) => !c.open),
    });
    expect(closedAt).to.have.length(100);
    // 100 at 200/s: about half a second, never all at once.
    const last = closedAt[closedAt.length - 1] as number;
    expect(last).to.be.within(350, 2000);
    expect(closedAt.filter((t) => t < 100).length).to.be.below(40);
  });

  it('lets a connection that is not ready wait, then closes it; stops at the deadline', async function () {
    const all = fakes(3);
    (all[0] as Fake).busyUntilMs = 150;
    const order: number[] = [];
    await closePaced<Fake>({
      open: () => all.filter((c) => c.open),
      isOpen: (c) => c.open,
      ready: (c, elapsedMs) => elapsedMs >= c.busyUntilMs,
      close: (c) => {
        c.open = false;
        order.push(c.id);
      },
      ratePerSecond: 1000,
      deadline: Date.now() + 5000,
      done: () => all.every((c) => !c.open),
    });
    expect(order[order.length - 1]).to.equal(0);
    expect(order).to.have.members([0, 1, 2]);

    const stuck = fakes(2);
    const before = Date.now();
    await closePaced<Fake>({
      open: () => stuck,
      isOpen: () => true,
      ready: () => false,
      close: () => {},
      ratePerSecond: 1000,
      deadline: Date.now() + 200,
      done: () => false,
    });
    expect(Date.now() - before).to.be.within(180, 1500);
  });
});
