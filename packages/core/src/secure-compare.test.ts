import { expect } from 'chai';
import { secretsEqual } from './secure-compare.js';

describe('secretsEqual', function () {
  it('compares secrets of any lengths', function () {
    expect(secretsEqual('abc', 'abc')).to.equal(true);
    expect(secretsEqual('abc', 'abcd')).to.equal(false);
    expect(secretsEqual('', 'x')).to.equal(false);
  });
});
