import { randomUUID } from 'node:crypto';
import { MemoryRoomStore, type Logger, type NodeConfig, type PeerTransport, type RoomStore, type SessionStore } from '@messaging-server/core';
import type { NodeRecord } from '@messaging-server/protocol';
import type { ClientSession } from './client-session.js';
import type { ConnectionTable } from './connection-table.js';
import type { HeldBudget } from './held-budget.js';
import { movedAtOf } from './moving-holds.js';
import type { Presence } from './room-absence.js';
import { RoomHome } from './room-home.js';
import { RoomJournal } from './room-journal.js';
import { RoomMembers } from './room-members.js';
import { ROOM_FANOUT_PATH } from './room-wire.js';

export interface Rooms {
  home: RoomHome;
  members: RoomMembers;
}

/** v1.2 rooms: the home of the rooms this node wins, and the member side of this node's users. */
export function wireRooms(
  deps: { config: NodeConfig; rooms?: RoomStore | undefined; transport: PeerTransport; sessions: SessionStore; held: HeldBudget; draining(): boolean },
  table: ConnectionTable,
  registry: { nodes(): ReadonlyMap<string, NodeRecord>; version(): number },
  log: Logger,
): Rooms {
  const { config } = deps;
  const nodes = (): ReadonlyMap<string, NodeRecord> => registry.nodes();
  let roomMembers!: RoomMembers;
  const store = deps.rooms ?? new MemoryRoomStore();
  const journal = new RoomJournal({ store, nodeId: config.nodeId, incarnation: randomUUID(), ttlSeconds: config.sessionTtlSeconds, log });
  const roomHome = new RoomHome({
    nodeId: config.nodeId,
    store,
    journal,
    maxMembers: config.roomMaxMembers,
    ttlSeconds: config.sessionTtlSeconds,
    windowMs: config.resumeWindowMs,
    perMemberMax: config.pendingMax,
    budget: deps.held,
    presence: (userId) => presenceOf(deps.sessions, userId),
    nodeAlive: (nodeId) => nodeId === config.nodeId || nodes().has(nodeId),
    isHome: (room) => roomMembers.homeOf(room) === config.nodeId,
    registryVersion: () => registry.version(),
    log,
    fanOut: async (nodeId, room, to, frame, copies) => {
      if (nodeId === config.nodeId) return roomMembers.deliver(to, frame, copies);
      const address = nodes().get(nodeId)?.internalAddress;
      if (address === undefined) throw new Error(`node ${nodeId} is not registered`);
      const answer = await deps.transport.post<{ missed?: unknown }>(address, ROOM_FANOUT_PATH, { room, to, frame });
      // A node that does not name what it missed (an older one) had everyone it was sent.
      return Array.isArray(answer.missed) ? answer.missed.filter((u): u is string => typeof u === 'string' && to.includes(u)) : [];
    },
  });
  roomMembers = new RoomMembers({
    nodeId: config.nodeId,
    home: roomHome,
    transport: deps.transport,
    roomsPerUser: config.roomsPerUser,
    journal,
    nodes,
    draining: () => deps.draining(),
    connection: (userId) => table.get(userId),
    saveRooms: (session, rooms) => {
      const write = deps.sessions.updateIfMatches(session.userId, session.key, (record) => ({ ...record, rooms }), config.sessionTtlSeconds);
      void write.catch((error: unknown) => log.warn({ userId: session.userId, err: error }, 'could not keep the rooms in the session'));
    },
    log,
  });
  roomHome.start();
  return { home: roomHome, members: roomMembers };
}

/** What the connections tell the rooms: a user left (leaves every room), or is moving (stays in them). */
export function roomHooks(rooms: Rooms): { userLeft(userId: string): void; userMoving(session: ClientSession): void } {
  return { userLeft: (userId) => rooms.members.userLeft(userId), userMoving: (session) => rooms.members.moving(session) };
}

/** The sweep's view of a member: its session record is the authority on whether it is back, moving, or gone. */
async function presenceOf(sessions: SessionStore, userId: string): Promise<Presence> {
  const record = await sessions.get(userId);
  if (!record) return { kind: 'gone' };
  if (record.moving === true) return { kind: 'moving', movedAt: movedAtOf(record.movedAt) };
  return { kind: 'here', nodeId: record.nodeId };
}
