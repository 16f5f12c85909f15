import { expect } from 'chai';
import { parseNodeId, parseRoomName, parseUserId } from './ids.js';

describe('named ids: parsed where they come in', function () {
  it('names valid values and refuses the rest', function () {
    expect([parseUserId('alice'), parseUserId('a b'), parseUserId(''), parseUserId(7)]).to.deep.equal(['alice', undefined, undefined, undefined]);
    expect([parseRoomName('lobby.1'), parseRoomName('x'.repeat(129))]).to.deep.equal(['lobby.1', undefined]);
    expect([parseNodeId('node-a'), parseNodeId(''), parseNodeId(null)]).to.deep.equal(['node-a', undefined, undefined]);
  });
});
