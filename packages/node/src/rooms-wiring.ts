import { MemoryRoomStore, type Logger, type NodeConfig, type PeerTransport, type RoomStore, type SessionStore } from '@messaging-server/core';
import type { NodeRecord } from '@messaging-server/protocol';
import type { ConnectionTable } from './connection-table.js';
import { RoomHome } from './room-home.js';
import { RoomMembers } from './room-members.js';
import { ROOM_FANOUT_PATH } from './room-wire.js';

export interface Rooms {
  home: RoomHome;
  members: RoomMembers;
}

/** v1.2 rooms: the home of the rooms this node wins, and the member side of this node's users. */
export function wireRooms(
  deps: { config: NodeConfig; rooms?: RoomStore | undefined; transport: PeerTransport; sessions: SessionStore },
  table: ConnectionTable,
  nodes: () => ReadonlyMap<string, NodeRecord>,
  log: Logger,
): Rooms {
  const { config } = deps;
  let roomMembers!: RoomMembers;
  const roomHome = new RoomHome({
    nodeId: config.nodeId,
    store: deps.rooms ?? new MemoryRoomStore(),
    maxMembers: config.roomMaxMembers,
    ttlSeconds: config.sessionTtlSeconds,
    log,
    fanOut: async (nodeId, room, to, frame) => {
      if (nodeId === config.nodeId) return void roomMembers.deliver(to, frame);
      const address = nodes().get(nodeId)?.internalAddress;
      if (address === undefined) throw new Error(`node ${nodeId} is not registered`);
      await deps.transport.post(address, ROOM_FANOUT_PATH, { room, to, frame });
    },
  });
  roomMembers = new RoomMembers({
    nodeId: config.nodeId,
    home: roomHome,
    transport: deps.transport,
    roomsPerUser: config.roomsPerUser,
    nodes,
    connection: (userId) => table.get(userId),
    saveRooms: (session, rooms) => {
      const write = deps.sessions.updateIfMatches(session.userId, session.key, (record) => ({ ...record, rooms }), config.sessionTtlSeconds);
      void write.catch((error: unknown) => log.warn({ userId: session.userId, err: error }, 'could not keep the rooms in the session'));
    },
    log,
  });
  return { home: roomHome, members: roomMembers };
}

