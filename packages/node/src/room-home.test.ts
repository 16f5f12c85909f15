import { expect } from 'chai';
import { MemoryRoomStore, silentLogger } from '@messaging-server/core';
import { RoomHome } from './room-home.js';

/** The counters `make scale` reads (msg_room_messages_homed_total, msg_room_fanout_copies_total). */
describe('RoomHome counts', function () {
  function home(): { home: RoomHome; copies: string[] } {
    const copies: string[] = [];
    const room = new RoomHome({
      nodeId: 'node-a',
      store: new MemoryRoomStore(),
      maxMembers: 50,
      ttlSeconds: 60,
      log: silentLogger,
      fanOut: (nodeId) => {
        copies.push(nodeId);
        return Promise.resolve();
      },
    });
    return { home: room, copies };
  }

  it('counts a message local when its sender and every other member are on the home node, crossed otherwise', async function () {
    const { home: h, copies } = home();
    await h.handle({ op: 'join', room: 'r', userId: 'alice', nodeId: 'node-a' });
    await h.handle({ op: 'join', room: 'r', userId: 'bob', nodeId: 'node-a' });
    await h.handle({ op: 'message', room: 'r', userId: 'alice', nodeId: 'node-a', content: 1 });
    expect(h.counts).to.include({ messagesLocal: 1, messagesCrossed: 0 });
    // A sender on another node: the op itself crossed, though the copy to bob stays on the home node.
    await h.handle({ op: 'join', room: 'r2', userId: 'carol', nodeId: 'node-b' });
    await h.handle({ op: 'join', room: 'r2', userId: 'dave', nodeId: 'node-a' });
    await h.handle({ op: 'message', room: 'r2', userId: 'carol', nodeId: 'node-b', content: 2 });
    // A sender on the home node with a member elsewhere: its copy crossed.
    await h.handle({ op: 'message', room: 'r2', userId: 'dave', nodeId: 'node-a', content: 3 });
    expect(h.counts).to.include({ messagesLocal: 1, messagesCrossed: 2 });
    // Copies: one per node per frame, member events included (bob's join to alice, alice's message, dave's join to carol, then carol's and dave's messages).
    expect(copies).to.deep.equal(['node-a', 'node-a', 'node-b', 'node-a', 'node-b']);
    expect(h.counts).to.include({ copiesLocal: 3, copiesRemote: 2 });
  });
});
