import type { Logger, RoomMemberRecord, RoomRecord, RoomStore } from '@messaging-server/core';
import type { ServerFrame } from '@messaging-server/protocol';
import type { RoomAnswer, RoomOp } from './room-wire.js';

export interface RoomHomeDeps {
  nodeId: string;
  store: RoomStore;
  maxMembers: number;
  /** TTL of room records (the session TTL); the home re-asserts its rooms' records well before. */
  ttlSeconds: number;
  /** One copy of `frame` to `nodeId`, for its members `to`; resolves when that node has taken it. */
  fanOut(nodeId: string, room: string, to: string[], frame: ServerFrame): Promise<void>;
  log: Logger;
}

interface HomeRoom {
  /** Loaded from the store on first use (after a handover the record carries the previous home's state). */
  members: RoomMemberRecord[];
  seq: number;
  /** The room's one order: every operation runs after the previous one finished. */
  tail: Promise<unknown>;
}

// A new home continues the order past the old home's last persisted place, leaving room for what it gave out since.
const HANDOVER_GAP = 1_000_000;

/**
 * The rooms whose home is this node (rendezvousOrder(R, active nodes)[0]). Serialises each room's joins, leaves and
 * messages, persists membership (compare-and-set) before answering a join or a leave, and fans every message and
 * member event out with one copy per node that holds members.
 */
export class RoomHome {
  private readonly rooms = new Map<string, HomeRoom>();
  /**
   * Metrics. A room message is `crossed` when it left this node at all: its sender is on another node (the op came
   * over the internal API) or a copy went to another node; `local` otherwise. Copies: one per node per frame.
   */
  readonly counts = { messagesLocal: 0, messagesCrossed: 0, copiesLocal: 0, copiesRemote: 0 };

  constructor(private readonly deps: RoomHomeDeps) {}

  /** Rooms homed here that have members, and their members (metrics). */
  get stats(): { rooms: number; members: number } {
    let members = 0;
    for (const room of this.rooms.values()) members += room.members.length;
    return { rooms: [...this.rooms.values()].filter((r) => r.members.length > 0).length, members };
  }

  handle(op: RoomOp): Promise<RoomAnswer> {
    const entry = this.rooms.get(op.room);
    const run = async (): Promise<RoomAnswer> => {
      const room = entry ?? (await this.load(op.room));
      return this.apply(room, op);
    };
    if (!entry) {
      // Loading is part of the first operation; later ones chain on it.
      const placeholder: HomeRoom = { members: [], seq: 0, tail: Promise.resolve() };
      this.rooms.set(op.room, placeholder);
      const first = (async () => {
        const loaded = await this.load(op.room);
        placeholder.members = loaded.members;
        placeholder.seq = loaded.seq;
        return this.apply(placeholder, op);
      })();
      placeholder.tail = first.catch(() => undefined);
      return first.catch((error: unknown) => this.failed(op, error));
    }
    const next = entry.tail.then(run);
    entry.tail = next.catch(() => undefined);
    return next.catch((error: unknown) => this.failed(op, error));
  }

  /** The home moved away (a node joined or left): forget the rooms, the next home loads them from the store. */
  forget(room: string): void {
    this.rooms.delete(room);
  }

  get roomNames(): string[] {
    return [...this.rooms.keys()];
  }

  /** Re-asserts the records of the rooms homed here (so a long-lived room never expires). */
  async refresh(): Promise<void> {
    for (const [name, room] of this.rooms) {
      if (room.members.length > 0) await this.deps.store.touch(name, this.deps.ttlSeconds).catch(() => undefined);
    }
  }

  private failed(op: RoomOp, error: unknown): RoomAnswer {
    this.deps.log.warn({ room: op.room, op: op.op, err: error }, 'room operation failed');
    // The room's state may be out of date after a failed store write: load it afresh next time.
    this.rooms.delete(op.room);
    return { status: 'error', code: 'RELAY_FAILED' };
  }

  private async load(name: string): Promise<HomeRoom> {
    const record = await this.deps.store.get(name);
    return { members: record?.members ?? [], seq: record ? record.seq + HANDOVER_GAP : 0, tail: Promise.resolve() };
  }

  private async apply(room: HomeRoom, op: RoomOp): Promise<RoomAnswer> {
    const isMember = room.members.some((m) => m.userId === op.userId);
    switch (op.op) {
      case 'join': {
        if (isMember) {
          this.moveMember(room, op.userId, op.nodeId);
          return { status: 'joined', members: room.members.map((m) => m.userId) };
        }
        if (room.members.length >= this.deps.maxMembers) return { status: 'error', code: 'ROOM_FULL' };
        const member: RoomMemberRecord = { userId: op.userId, joinedAt: new Date().toISOString(), nodeId: op.nodeId };
        await this.persist(op.room, room, (members) => [...members.filter((m) => m.userId !== op.userId), member]);
        await this.broadcast(op.room, room, op.userId, { type: 'member', room: op.room, userId: op.userId, event: 'joined' });
        return { status: 'joined', members: room.members.map((m) => m.userId) };
      }
      case 'resume': {
        if (!isMember) return { status: 'error', code: 'NOT_A_MEMBER' };
        this.moveMember(room, op.userId, op.nodeId);
        await this.persist(op.room, room, (members) => members.map((m) => (m.userId === op.userId ? { ...m, nodeId: op.nodeId } : m)));
        return { status: 'joined', members: room.members.map((m) => m.userId) };
      }
      case 'leave': {
        if (!isMember) return { status: 'ack' };
        const others = room.members.filter((m) => m.userId !== op.userId);
        await this.persist(op.room, room, (members) => members.filter((m) => m.userId !== op.userId));
        await this.fanOutTo(op.room, others, { type: 'member', room: op.room, userId: op.userId, event: 'left' });
        if (room.members.length === 0) this.rooms.delete(op.room);
        return { status: 'ack' };
      }
      case 'message': {
        if (!isMember) return { status: 'error', code: 'NOT_A_MEMBER' };
        this.moveMember(room, op.userId, op.nodeId);
        room.seq += 1;
        this.countMessage(room, op);
        const frame: ServerFrame = { type: 'message', from: op.userId, room: op.room, content: op.content, ...(op.id === undefined ? {} : { id: op.id }) };
        await this.broadcast(op.room, room, op.userId, frame);
        return { status: 'ack' };
      }
    }
  }

  private countMessage(room: HomeRoom, op: RoomOp): void {
    const here = this.deps.nodeId;
    const elsewhere = room.members.some((m) => m.userId !== op.userId && (m.nodeId ?? here) !== here);
    if (op.nodeId !== here || elsewhere) this.counts.messagesCrossed += 1;
    else this.counts.messagesLocal += 1;
  }

  /** A member's traffic now goes to the node it spoke from (it moved); persisted with the next join or leave. */
  private moveMember(room: HomeRoom, userId: string, nodeId: string): void {
    const member = room.members.find((m) => m.userId === userId);
    if (member) member.nodeId = nodeId;
  }

  /** Writes the room's members through the store's CAS, and adopts what was stored (another home's changes too). */
  private async persist(name: string, room: HomeRoom, change: (members: RoomMemberRecord[]) => RoomMemberRecord[]): Promise<void> {
    const seq = room.seq + 1;
    const stored = await this.deps.store.update(
      name,
      (current: RoomRecord | undefined) => {
        const members = change(current?.members ?? room.members);
        if (members.length === 0) return null;
        return { room: name, members, seq: Math.max(seq, current?.seq ?? 0), home: this.deps.nodeId, updatedAt: new Date().toISOString() };
      },
      this.deps.ttlSeconds,
    );
    room.members = stored?.members ?? [];
    room.seq = Math.max(seq, stored?.seq ?? 0);
  }

  private broadcast(name: string, room: HomeRoom, except: string, frame: ServerFrame): Promise<void> {
    return this.fanOutTo(name, room.members.filter((m) => m.userId !== except), frame);
  }

  /** One copy per node holding members, all nodes at once; a node that fails does not stop the others. */
  private async fanOutTo(name: string, members: RoomMemberRecord[], frame: ServerFrame): Promise<void> {
    const byNode = new Map<string, string[]>();
    for (const member of members) {
      const nodeId = member.nodeId ?? this.deps.nodeId;
      byNode.set(nodeId, [...(byNode.get(nodeId) ?? []), member.userId]);
    }
    for (const nodeId of byNode.keys()) {
      if (nodeId === this.deps.nodeId) this.counts.copiesLocal += 1;
      else this.counts.copiesRemote += 1;
    }
    await Promise.all(
      [...byNode].map(([nodeId, to]) =>
        this.deps.fanOut(nodeId, name, to, frame).catch((error: unknown) => {
          this.deps.log.warn({ room: name, nodeId, err: error }, 'room fan-out to a node failed');
        }),
      ),
    );
  }
}
