import { expect } from 'chai';
import { RepeatFilter } from './repeat-filter.js';

describe('RepeatFilter', () => {
  it('admits a (from, id) once and counts its repeats', () => {
    const filter = new RepeatFilter();
    expect([filter.admit('bob', '1'), filter.admit('bob', '1'), filter.admit('carol', '1'), filter.admit('bob', '2')]).to.deep.equal([true, false, true, true]);
    expect(filter.dropped).to.equal(1);
  });

  it('remembers only its last `capacity` pairs, so its memory stays bounded', () => {
    const filter = new RepeatFilter(2);
    for (const id of ['a', 'b', 'c']) filter.admit('bob', id);
    expect(filter.admit('bob', 'c')).to.equal(false);
    expect(filter.admit('bob', 'a')).to.equal(true);
  });
});
