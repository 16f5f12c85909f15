import { expect } from 'chai';
import { loadConfig, MemoryRegistry, MemoryRoomStore, MemorySessionStore, rendezvousOrder, type PeerTransport } from '@messaging-server/core';
import { NotFoundError, roomCommand, type MsgctlContext } from './commands.js';
import { asNodeId } from '@messaging-server/protocol';

const STARTED = '2026-01-01T00:00:00.000Z';
const node = (nodeId: string, state: 'active' | 'draining' = 'active') =>
  ({ nodeId: asNodeId(nodeId), listeningAddress: `http://${nodeId}/ws`, internalAddress: `http://${nodeId}:9081`, state, startedAt: STARTED, version: '1' }) as const;

describe('msgctl room (memory registry and room store)', () => {
  let registry: MemoryRegistry;
  let rooms: MemoryRoomStore;
  let text: string;
  const ctx = (json: boolean): MsgctlContext => ({
    config: loadConfig('gateway', {}),
    registry: () => registry,
    sessions: () => new MemorySessionStore(),
    rooms: () => rooms,
    transport: () => ({}) as PeerTransport,
    json,
    out: (chunk) => {
      text += chunk;
    },
  });
  const join = (room: string, userId: string) =>
    rooms.update(room, (r) => ({ room, seq: 0, home: 'node-a', updatedAt: STARTED, members: [...(r?.members ?? []), { userId, joinedAt: STARTED }] }), 60);

  beforeEach(() => {
    registry = new MemoryRegistry({ leaseTtlSeconds: 5 });
    rooms = new MemoryRoomStore();
    text = '';
  });
  afterEach(async () => {
    await registry.close();
    await rooms.close();
  });

  it('prints members in join order and the rendezvous pick over active nodes with room, skipping full and draining ones', async () => {
    const ids = ['node-a', 'node-b', 'node-c'];
    const regs = await Promise.all(ids.map((id) => registry.registerNode(node(id))));
    await join('standup', 'carol');
    await join('standup', 'alice');
    await roomCommand(ctx(true), 'standup');
    const order = rendezvousOrder('standup', ids);
    expect(JSON.parse(text)).to.deep.equal({ room: 'standup', members: ['carol', 'alice'], placement: order[0] });

    // The first choice full (at its maxConnections): the second one; the second draining too: the third.
    await regs[ids.indexOf(order[0]!)]!.putLoad({ connections: 5, maxConnections: 5, pending: 0, updatedAt: STARTED });
    text = '';
    await roomCommand(ctx(true), 'standup');
    expect((JSON.parse(text) as { placement: string }).placement).to.equal(order[1]);
    await regs[ids.indexOf(order[1]!)]!.update({ ...node(order[1]!, 'draining') });
    text = '';
    await roomCommand(ctx(false), 'standup');
    expect(text).to.match(/standup\s+carol,alice\s+/).and.to.include(order[2]!);
  });

  it('placement is null without an active node; a room without members is not found', async () => {
    await join('r', 'bob');
    await roomCommand(ctx(true), 'r');
    expect(JSON.parse(text)).to.deep.equal({ room: 'r', members: ['bob'], placement: null });
    const error = await roomCommand(ctx(true), 'empty').then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(NotFoundError);
  });
});
