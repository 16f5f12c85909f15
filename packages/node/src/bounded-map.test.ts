import { expect } from 'chai';
import { BoundedMap } from './bounded-map.js';

describe('BoundedMap', function () {
  it('keeps the newest keys: setting one again makes it the newest, and the oldest goes past the bound', function () {
    const map = new BoundedMap<string, number>(2);
    map.set('a', 1).set('b', 2).set('a', 3).set('c', 4);
    expect([...map]).to.deep.equal([
      ['a', 3],
      ['c', 4],
    ]);
  });
});
