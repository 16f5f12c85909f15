import { expect } from 'chai';
import { RecentUsers } from './recent-users.js';

describe('RecentUsers (the replace policy hint)', () => {
  it('remembers at most `capacity` users, forgetting the least recently added first', () => {
    const recent = new RecentUsers(2);
    recent.add('a');
    recent.add('b');
    recent.add('a'); // a is now the newest
    recent.add('c'); // evicts b
    expect(['a', 'b', 'c'].map((u) => recent.has(u))).to.deep.equal([true, false, true]);
  });
});
