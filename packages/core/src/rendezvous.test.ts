import { expect } from 'chai';
import fc from 'fast-check';
import { rendezvousOrder } from './rendezvous.js';

const nodes = (n: number): string[] => Array.from({ length: n }, (_, i) => `node-${String(i + 1)}`);
const rooms = Array.from({ length: 2000 }, (_, i) => `room-${String(i)}`);

describe('rendezvousOrder', () => {
  it('is the same whatever order the node ids come in', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), fc.shuffledSubarray(nodes(12), { minLength: 1 }), (key, ids) => {
        expect(rendezvousOrder(key, ids)).to.deep.equal(rendezvousOrder(key, [...ids].reverse()));
      }),
    );
  });

  it('moves only the keys a joining node wins, and only the keys a leaving node held', () => {
    const before = new Map(rooms.map((room) => [room, rendezvousOrder(room, nodes(5))[0]]));
    const joined = new Map(rooms.map((room) => [room, rendezvousOrder(room, nodes(6))[0]]));
    const moved = rooms.filter((room) => before.get(room) !== joined.get(room));
    expect(moved.every((room) => joined.get(room) === 'node-6')).to.equal(true);
    // About 1/6 of the keys: the new node's fair share, not a reshuffle.
    expect(moved.length).to.be.within(2000 / 6 - 100, 2000 / 6 + 100);

    const left = new Map(rooms.map((room) => [room, rendezvousOrder(room, nodes(5).filter((id) => id !== 'node-3'))[0]]));
    const displaced = rooms.filter((room) => before.get(room) !== left.get(room));
    expect(displaced.every((room) => before.get(room) === 'node-3')).to.equal(true);
    expect(displaced.length).to.equal(rooms.filter((room) => before.get(room) === 'node-3').length);
  });

  it('spreads keys evenly over the nodes', () => {
    const counts = new Map<string, number>();
    for (const room of rooms) {
      const first = rendezvousOrder(room, nodes(10))[0] as string;
      counts.set(first, (counts.get(first) ?? 0) + 1);
    }
    expect(counts.size).to.equal(10);
    for (const count of counts.values()) expect(count).to.be.within(140, 260);
  });
});
