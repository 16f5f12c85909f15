import type { Logger, RoomMemberRecord, RoomRecord, RoomStore } from '@messaging-server/core';
import type { ServerFrame } from '@messaging-server/protocol';
import type { HeldBudget } from './held-budget.js';
import { RoomAbsences, type Presence } from './room-absence.js';
import { crossedNodes, HANDOVER_GAP, mayReread, union, type HomeRoom } from './home-room.js';
import type { RoomJournal, TrackedCopy } from './room-journal.js';
import type { RoomAnswer, RoomOp } from './room-wire.js';

export interface RoomHomeDeps {
  nodeId: string;
  store: RoomStore;
  maxMembers: number;
  /** TTL of room records (the session TTL); the home re-asserts its rooms' records well before. */
  ttlSeconds: number;
  /**
   * One copy of `frame` to `nodeId`, for its members `to`; resolves, once that node has taken it, with the members
   * it found no connection for (they are away). `copies`, for a room message: where this node's own members'
   * copies that only its memory keeps until confirmed are listed (RoomMembers.deliver).
   */
  fanOut(nodeId: string, room: string, to: string[], frame: ServerFrame, copies?: TrackedCopy[]): Promise<string[]>;
  /** Where the room messages written here and not yet confirmed are kept for the next home. */
  journal: RoomJournal;
  /** v1.1's resume window: a member away longer than this, and not back, is reported `left`. */
  windowMs: number;
  /** Frames held per away member (MSG_PENDING_MAX) and the node's held-message byte budgets. */
  perMemberMax: number;
  budget: HeldBudget;
  /** Where the user's session says it is (the sweep's authority on who is gone). */
  presence(userId: string): Promise<Presence>;
  /** False once the node left the registry (its members may be gone with it). */
  nodeAlive(nodeId: string): boolean;
  /** Whether this node is the room's home by its own view of the registry. */
  isHome(room: string): boolean;
  /** Rises whenever the registry's nodes change: a room loaded before may have had another home since. */
  registryVersion(): number;
  log: Logger;
}

/**
 * The rooms whose home is this node (rendezvousOrder(R, active nodes)[0]). Serialises each room's joins, leaves and
 * messages, persists membership (compare-and-set) before answering a join or a leave, and fans every message and
 * member event out with one copy per node that holds members.
 */
export class RoomHome {
  private readonly rooms = new Map<string, HomeRoom>();
  private sweeper: NodeJS.Timeout | undefined;
  private refresher: NodeJS.Timeout | undefined;
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

  /**
   * A room message is answered once it is journaled (if copies of it here wait for receipts), outside the room's
   * order, which goes on meanwhile.
   */
  async handle(op: RoomOp): Promise<RoomAnswer> {
    const journaled: Promise<boolean>[] = [];
    const answer = await this.run(op.room, (room) => this.apply(room, op, journaled)).catch((error: unknown) => this.failed(op, error));
    await Promise.all(journaled);
    return answer;
  }

  /**
   * Runs `task` in the room's order, after reading the room from the store on first use, and again when the registry
   * changed since (another node may have been its home meanwhile) or a write failed (the state may be behind).
   */
  private run<T>(name: string, task: (room: HomeRoom) => Promise<T>): Promise<T> {
    let entry = this.rooms.get(name);
    if (!entry) {
      entry = { members: [], seq: 0, tail: Promise.resolve(), away: this.absences(), queued: 0, storedHeld: new Set(), readAt: undefined, rereadAt: 0 };
      this.rooms.set(name, entry);
    }
    const room = entry;
    room.queued += 1;
    const next = room.tail.then(async () => {
      if (room.readAt !== this.deps.registryVersion()) await this.read(name, room);
      return task(room);
    });
    room.tail = next.catch(() => undefined);
    const done = (): void => void (room.queued -= 1);
    next.then(done, done);
    return next;
  }

  /**
   * Reads the room's record. A record another home wrote since this one did replaces what is in memory, holds
   * included (that home delivered some and held others); this home's own latest write changes nothing. A room
   * never read here fails its task when the store cannot answer; one read before carries on from memory.
   */
  private async read(name: string, room: HomeRoom): Promise<void> {
    const version = this.deps.registryVersion();
    const first = room.readAt === undefined && room.members.length === 0;
    let record: RoomRecord | undefined;
    try {
      record = await this.deps.store.get(name);
    } catch (error) {
      if (first) throw error;
      this.deps.log.warn({ room: name, err: error }, 'room record unreadable; carrying on from memory');
      room.readAt = version;
      return;
    }
    room.readAt = version;
    if (!record || (!first && record.home === this.deps.nodeId && record.seq <= room.seq)) return;
    room.members = record.members;
    room.seq = Math.max(room.seq, record.seq + (record.home === this.deps.nodeId ? 0 : HANDOVER_GAP));
    room.away.clear();
    room.storedHeld = new Set(Object.keys(record.held ?? {}));
    for (const member of record.members) {
      const held = record.held?.[member.userId] ?? [];
      // Whether a member without holds is still connected is unknown after a handover: the sweep checks.
      if (held.length === 0 || !room.away.hold(member.userId, held)) room.away.suspect(member.userId);
    }
    await this.takeOverJournal(name, room, record.home);
  }

  /**
   * The copies the previous home wrote to its members and had not seen confirmed: sent again to each member's
   * node, held for a member that is away (ahead of what it holds: they are older). Then the record names this node
   * as home, so the home after it reads this node's journal.
   */
  private async takeOverJournal(name: string, room: HomeRoom, writer: string): Promise<void> {
    const perMember = await this.deps.journal.takeOver(name, writer).catch((error: unknown) => {
      this.deps.log.warn({ room: name, writer, err: error }, 'room journal unreadable: unconfirmed copies of its previous home are lost');
      return new Map<string, ServerFrame[]>();
    });
    for (const [userId, frames] of perMember) {
      const member = room.members.find((m) => m.userId === userId);
      if (!member) continue;
      if (room.away.holding(userId)) {
        if (!room.away.hold(userId, frames, true)) await this.overCap(name, room, userId);
        continue;
      }
      for (const [index, frame] of frames.entries()) {
        if (!room.away.holding(userId)) {
          await this.sendTo(name, room, userId, member.nodeId ?? this.deps.nodeId, frame);
          continue;
        }
        // Missed once: the rest is held behind it, in order.
        if (!room.away.hold(userId, frames.slice(index))) await this.overCap(name, room, userId);
        break;
      }
    }
    if (writer !== this.deps.nodeId) await this.saveHeld(name, room);
  }

  private absences(): RoomAbsences {
    return new RoomAbsences(this.deps.budget, this.deps.perMemberMax);
  }

  /** The home moved away (a node joined or left): forget the rooms, the next home loads them from the store. */
  forget(room: string): void {
    this.rooms.get(room)?.away.clear();
    this.rooms.delete(room);
  }

  get roomNames(): string[] {
    return [...this.rooms.keys()];
  }

  /**
   * Re-asserts the records of the rooms homed here, so a long-lived room never expires; a record that is gone
   * (memcached restarted empty, or evicted it) is written again from what the home holds, as nodes re-assert their
   * sessions. Otherwise the next home would find no record and answer every member NOT_A_MEMBER.
   */
  async refresh(): Promise<void> {
    for (const [name, room] of this.rooms) {
      // Another node is home now and reads the record (holds included); this copy would only go stale.
      if (!this.deps.isHome(name) && room.queued === 0) {
        this.forget(name);
        continue;
      }
      if (room.members.length === 0) continue;
      const kept = await this.deps.store.touch(name, this.deps.ttlSeconds).catch(() => true);
      if (!kept) await this.run(name, (r) => this.persist(name, r, (members) => members)).catch(() => undefined);
    }
  }

  private failed(op: RoomOp, error: unknown): RoomAnswer {
    this.deps.log.warn({ room: op.room, op: op.op, err: error }, 'room operation failed');
    // The room's state may be behind the store after a failed write: read it again first next time (what it holds
    // for away members stays).
    const room = this.rooms.get(op.room);
    if (room) room.readAt = undefined;
    return { status: 'error', code: 'RELAY_FAILED' };
  }

  private async apply(room: HomeRoom, op: RoomOp, journaled: Promise<boolean>[]): Promise<RoomAnswer> {
    let isMember = room.members.some((m) => m.userId === op.userId);
    // Another home may have taken the join meanwhile (two homes during a handover): the record says, not memory.
    if (!isMember && (op.op === 'message' || op.op === 'resume') && mayReread(room)) {
      await this.read(op.room, room);
      isMember = room.members.some((m) => m.userId === op.userId);
    }
    switch (op.op) {
      case 'join': {
        if (isMember) {
          await this.seen(op.room, room, op.userId, op.nodeId);
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
        // What was held comes first, on the member's new node, then the fresh `joined` its node writes.
        await this.seen(op.room, room, op.userId, op.nodeId, await this.unconfirmedOnPrevious(op.room, room, op.userId, op.nodeId));
        await this.persist(op.room, room, (members) => members.map((m) => (m.userId === op.userId ? { ...m, nodeId: op.nodeId } : m)));
        return { status: 'joined', members: room.members.map((m) => m.userId) };
      }
      case 'away':
        if (isMember) await this.away(op.room, room, op.userId, op.nodeId, op.frames);
        return { status: 'ack' };
      case 'leave': {
        if (!isMember) return { status: 'ack' };
        await this.remove(op.room, room, op.userId);
        return { status: 'ack' };
      }
      case 'message': {
        if (!isMember) return { status: 'error', code: 'NOT_A_MEMBER' };
        await this.seen(op.room, room, op.userId, op.nodeId);
        room.seq += 1;
        if (crossedNodes(room, op.userId, op.nodeId, this.deps.nodeId)) this.counts.messagesCrossed += 1;
        else this.counts.messagesLocal += 1;
        const frame: ServerFrame = { type: 'message', from: op.userId, room: op.room, content: op.content, ...(op.id === undefined ? {} : { id: op.id }) };
        const copies: TrackedCopy[] = [];
        await this.broadcast(op.room, room, op.userId, frame, copies);
        if (copies.length > 0) journaled.push(this.deps.journal.record(op.room, room.seq, frame, copies));
        return { status: 'ack' };
      }
    }
  }

  /** The member is out of the room: persisted, `left` to the others, and nothing more held for it. */
  private async remove(name: string, room: HomeRoom, userId: string): Promise<void> {
    room.away.take(userId);
    await this.persist(name, room, (members) => members.filter((m) => m.userId !== userId));
    await this.fanOutTo(name, room, room.members, { type: 'member', room: name, userId, event: 'left' });
    // Not while other operations wait on this room object (the sweep forgets it later).
    if (room.members.length === 0 && room.queued <= 1) this.forget(name);
  }

  /**
   * The member spoke from (or resumed on) `nodeId`: the room's traffic for it goes there from now on, and what was
   * held for it goes there first, in order.
   */
  private async seen(name: string, room: HomeRoom, userId: string, nodeId: string, unconfirmed: ServerFrame[] = []): Promise<void> {
    const member = room.members.find((m) => m.userId === userId);
    if (member) member.nodeId = nodeId;
    let held = room.away.take(userId);
    if (held.length > 0 || room.storedHeld.has(userId)) {
      // The record may hold more than memory: frames another home held during a handover.
      const inRecord = await this.persist(name, room, (members) => members, userId).catch((error: unknown) => {
        this.deps.log.warn({ room: name, userId, err: error }, 'could not take the held frames from the room record');
        return [];
      });
      held = union(inRecord, held);
    }
    // Copies its previous node had not seen confirmed are older than anything held since.
    for (const frame of union(unconfirmed, held)) await this.sendTo(name, room, userId, nodeId, frame);
  }

  /**
   * A member resumed on another node than the one the room last sent to: what that node's journal keeps for it (it
   * may have died with those copies unconfirmed; if it lives, they were handed back too and go once).
   */
  private async unconfirmedOnPrevious(name: string, room: HomeRoom, userId: string, nodeId: string): Promise<ServerFrame[]> {
    const previous = room.members.find((m) => m.userId === userId)?.nodeId;
    if (previous === undefined || previous === nodeId || previous === this.deps.nodeId) return [];
    return this.deps.journal.framesFor(name, previous, userId).catch((error: unknown) => {
      this.deps.log.warn({ room: name, userId, previous, err: error }, 'room journal of the member\'s previous node unreadable');
      return [];
    });
  }

  /** Writes what is held into the record; a store that cannot answer leaves it in memory for the next write. */
  private async saveHeld(name: string, room: HomeRoom): Promise<void> {
    await this.persist(name, room, (members) => members).catch((error: unknown) => {
      this.deps.log.warn({ room: name, err: error }, 'could not write the held frames into the room record');
    });
  }

  /**
   * The member's connection ended without its clean close (its node says so, with the room messages it left
   * unconfirmed, oldest first). Already back on another node: they go there now, late rather than never.
   */
  private async away(name: string, room: HomeRoom, userId: string, nodeId: string, frames: ServerFrame[]): Promise<void> {
    const member = room.members.find((m) => m.userId === userId);
    if (member?.nodeId !== undefined && member.nodeId !== nodeId && !room.away.holding(userId)) {
      for (const frame of frames) await this.sendTo(name, room, userId, member.nodeId, frame);
      return;
    }
    if (!room.away.hold(userId, frames, true)) return this.overCap(name, room, userId);
    if (frames.length > 0) await this.saveHeld(name, room);
  }

  /** One frame to one member on `nodeId`; held if it is not there. */
  private async sendTo(name: string, room: HomeRoom, userId: string, nodeId: string, frame: ServerFrame): Promise<void> {
    const missed = await this.deps.fanOut(nodeId, name, [userId], frame).catch(() => [userId]);
    if (missed.length === 0) return;
    if (!room.away.hold(userId, [frame])) return this.overCap(name, room, userId);
    await this.saveHeld(name, room);
  }

  /**
   * Clarification "Held-message caps": a member whose held room frames would pass a cap is removed, `left` to the
   * others; its own `left` comes after its next welcome (its resume answers NOT_A_MEMBER).
   */
  private async overCap(name: string, room: HomeRoom, userId: string): Promise<void> {
    this.deps.log.warn({ room: name, userId }, 'room member removed: its held frames passed a cap');
    await this.remove(name, room, userId);
  }

  /**
   * Writes the room's members through the store's CAS, with what this home holds for away members merged into what
   * the record holds (a record another home wrote may hold frames this one never saw), and adopts what was stored.
   * `take`: that member's held frames leave the record; resolves with them (oldest first), else with [].
   */
  private async persist(name: string, room: HomeRoom, change: (members: RoomMemberRecord[]) => RoomMemberRecord[], take?: string): Promise<ServerFrame[]> {
    const seq = room.seq + 1;
    let taken: ServerFrame[] = [];
    const stored = await this.deps.store.update(
      name,
      (current: RoomRecord | undefined) => {
        const members = change(current?.members ?? room.members);
        if (members.length === 0) return null;
        const held: Record<string, ServerFrame[]> = {};
        const inMemory = room.away.heldFrames();
        for (const { userId } of members) {
          const frames = union(inMemory.get(userId) ?? [], current?.held?.[userId] ?? []);
          if (userId === take) taken = frames;
          else if (frames.length > 0) held[userId] = frames;
        }
        const record: RoomRecord = { room: name, members, seq: Math.max(seq, current?.seq ?? 0), home: this.deps.nodeId, updatedAt: new Date().toISOString() };
        return Object.keys(held).length > 0 ? { ...record, held } : record;
      },
      this.deps.ttlSeconds,
    );
    room.members = stored?.members ?? [];
    room.seq = Math.max(seq, stored?.seq ?? 0);
    room.storedHeld = new Set(Object.keys(stored?.held ?? {}));
    return taken;
  }

  private broadcast(name: string, room: HomeRoom, except: string, frame: ServerFrame, copies?: TrackedCopy[]): Promise<void> {
    return this.fanOutTo(name, room, room.members.filter((m) => m.userId !== except), frame, copies);
  }

  /**
   * One copy per node holding members, all nodes at once; a node that fails does not stop the others. Members known
   * to be away, and those a node found no connection for, have the frame held (v1.2, "Members outlive moves").
   */
  private async fanOutTo(name: string, room: HomeRoom, members: RoomMemberRecord[], frame: ServerFrame, copies?: TrackedCopy[]): Promise<void> {
    const byNode = new Map<string, string[]>();
    const missed: string[] = [];
    for (const member of members) {
      if (room.away.holding(member.userId)) {
        missed.push(member.userId);
        continue;
      }
      const nodeId = member.nodeId ?? this.deps.nodeId;
      byNode.set(nodeId, [...(byNode.get(nodeId) ?? []), member.userId]);
    }
    for (const nodeId of byNode.keys()) {
      if (nodeId === this.deps.nodeId) this.counts.copiesLocal += 1;
      else this.counts.copiesRemote += 1;
    }
    await Promise.all(
      [...byNode].map(async ([nodeId, to]) => {
        const notThere = await this.deps.fanOut(nodeId, name, to, frame, copies).catch((error: unknown) => {
          this.deps.log.warn({ room: name, nodeId, err: error }, 'room fan-out to a node failed');
          return to;
        });
        missed.push(...notThere);
        for (const userId of to) if (!notThere.includes(userId)) room.away.present(userId);
      }),
    );
    let held = false;
    for (const userId of missed) {
      if (room.away.hold(userId, [frame])) held = true;
      else await this.overCap(name, room, userId);
    }
    if (held) await this.saveHeld(name, room);
  }

  /**
   * Starts the sweep that reports `left` for members away longer than the window (acceptance 4 of issue 23), and
   * the refresh of the rooms' records: a record lives `ttlSeconds` from its last write, and a room whose membership
   * stays the same writes nothing, so without it the next home (after a drain, a crash, a node joining) would load
   * no record and answer every member NOT_A_MEMBER (found by `make chaos` with rooms).
   */
  start(): void {
    const every = Math.max(100, Math.min(5_000, Math.floor(this.deps.windowMs / 4)));
    this.sweeper = setInterval(() => void this.sweep(), every);
    this.sweeper.unref();
    this.refresher = setInterval(() => void this.refresh(), Math.max(1000, (this.deps.ttlSeconds * 1000) / 3));
    this.refresher.unref();
    this.deps.journal.start();
  }

  stop(): void {
    this.deps.journal.stop();
    clearInterval(this.sweeper);
    clearInterval(this.refresher);
    this.sweeper = undefined;
    this.refresher = undefined;
  }

  /** Every room homed here, in its own order: members whose window passed are checked against their session. */
  async sweep(now = Date.now()): Promise<void> {
    for (const name of [...this.rooms.keys()]) {
      await this.run(name, (room) => this.sweepRoom(name, room, now)).catch((error: unknown) => {
        this.deps.log.warn({ room: name, err: error }, 'room sweep failed');
      });
    }
  }

  private async sweepRoom(name: string, room: HomeRoom, now: number): Promise<void> {
    for (const member of room.members) {
      if (member.nodeId !== undefined && !this.deps.nodeAlive(member.nodeId)) room.away.suspect(member.userId, now);
    }
    const due = [...room.away.entries()].filter(([, away]) => now - away.since >= this.deps.windowMs).map(([userId]) => userId);
    for (const userId of due) {
      if (!room.members.some((m) => m.userId === userId)) {
        room.away.take(userId);
        continue;
      }
      const presence = await this.deps.presence(userId);
      if (presence.kind === 'here') await this.seen(name, room, userId, presence.nodeId);
      else if (presence.kind === 'gone' || now - presence.movedAt >= this.deps.windowMs) await this.remove(name, room, userId);
    }
    // A room left without members here (all left, or an operation on a room nobody is in) is not kept.
    if (room.members.length === 0 && room.queued <= 1 && this.rooms.get(name) === room) this.forget(name);
  }
}
