import { rendezvousOrder, type Logger, type PeerTransport } from '@messaging-server/core';
import {
  isValidRoomName,
  roomGranted,
  type JoinFrame,
  type LeaveFrame,
  type NodeRecord,
  type RoomMessageFrame,
  type ServerFrame,
} from '@messaging-server/protocol';
import type { ClientSession } from './client-session.js';
import { ERROR_TEXT } from './frame-errors.js';
import type { RoomHome } from './room-home.js';
import type { RoomJournal, TrackedCopy } from './room-journal.js';
import { ROOM_OP_PATH, type RoomAnswer, type RoomOp } from './room-wire.js';

export interface RoomMembersDeps {
  nodeId: string;
  home: RoomHome;
  transport: PeerTransport;
  roomsPerUser: number;
  /** The registry's nodes as this node sees them. */
  nodes(): ReadonlyMap<string, NodeRecord>;
  /** True once this node drains: it is no room's home any more, whatever the registry says yet. */
  draining(): boolean;
  /** The open connection of a user on this node. */
  connection(userId: string): ClientSession | undefined;
  /** Where the room messages written here and not yet confirmed are kept (shared with this node's RoomHome). */
  journal: RoomJournal;
  /** Keeps the user's rooms in its session record, so they go with it to its next node. */
  saveRooms(session: ClientSession, rooms: string[]): void;
  log: Logger;
}

/** How long a room operation looks for a home that answers (a crashed home's lease runs out meanwhile). */
const HOME_RETRY_MS = 10_000;

/** A frame for a joiner, written after its `joined`; `onSafe` as in ClientSession.writeRoomFrame. */
interface EarlyFrame {
  frame: ServerFrame;
  onSafe?: () => void;
}

/**
 * The member side of rooms on a node: checks a client's join, leave and room message (name, grant, rooms per user),
 * hands it to the room's home (here, or over the internal API), and answers the client. It also writes what a home
 * fans out to this node's members, and makes a user who left (clean or terminal close) leave every room.
 */
export class RoomMembers {
  /** The rooms of each user on this node, so TOO_MANY_ROOMS needs no round trip. */
  private readonly roomsOf = new Map<string, Set<string>>();
  /** One operation in flight per user, so a sender's messages reach the home in the order sent. */
  private readonly tails = new Map<string, Promise<unknown>>();
  /** Frames fanned out to a joiner before its `joined` went out: written right after it. */
  private readonly joining = new Map<string, EarlyFrame[]>();

  /** Fan-out copies received from homes on other nodes (metrics). */
  remoteFanouts = 0;

  constructor(private readonly deps: RoomMembersDeps) {}

  /** Local members, for the metrics. */
  get memberCount(): number {
    let count = 0;
    for (const rooms of this.roomsOf.values()) count += rooms.size;
    return count;
  }

  /**
   * The room's home: the first active node in its rendezvous order (the same order placement uses), leaving out
   * `skipped` (homes that did not answer) and this node while it drains (its rooms move with its members).
   */
  homeOf(room: string, skipped: ReadonlySet<string> = new Set()): string {
    const usable = (n: NodeRecord): boolean =>
      n.state === 'active' && !skipped.has(n.nodeId) && !(n.nodeId === this.deps.nodeId && this.deps.draining());
    const active = [...this.deps.nodes().values()].filter(usable).map((n) => n.nodeId);
    return rendezvousOrder(room, active.length > 0 ? active : [this.deps.nodeId])[0] ?? this.deps.nodeId;
  }

  onFrame(session: ClientSession, frame: JoinFrame | LeaveFrame | RoomMessageFrame): void {
    const { room, id } = frame;
    if (!isValidRoomName(room)) return void session.sendError('INVALID_ROOM', ERROR_TEXT.INVALID_ROOM, id);
    const userId = session.userId;
    const mine = this.roomsOf.get(userId) ?? new Set<string>();
    if (frame.type === 'join') {
      if (!roomGranted(session.record?.roomGrants, room)) return void session.sendError('FORBIDDEN_ROOM', ERROR_TEXT.FORBIDDEN_ROOM, id);
      if (!mine.has(room) && mine.size >= this.deps.roomsPerUser) return void session.sendError('TOO_MANY_ROOMS', ERROR_TEXT.TOO_MANY_ROOMS, id);
    }
    const op: RoomOp =
      frame.type === 'join' || frame.type === 'leave'
        ? { op: frame.type, room, userId, nodeId: this.deps.nodeId }
        : { op: 'message', room, userId, nodeId: this.deps.nodeId, content: frame.content, ...(id === undefined ? {} : { id }) };
    const joinKey = `${userId}\u0000${room}`;
    if (frame.type === 'join' && !mine.has(room)) this.joining.set(joinKey, this.joining.get(joinKey) ?? []);
    void this.enqueue(userId, async () => {
      const answer = await this.send(op);
      this.answer(session, frame, answer);
      if (frame.type === 'join') this.flushJoining(joinKey, answer.status === 'joined' ? session : undefined);
    });
  }

  private flushJoining(key: string, session: ClientSession | undefined): void {
    const held = this.joining.get(key);
    this.joining.delete(key);
    for (const { frame, onSafe } of held ?? []) {
      // A joiner that did not get in has no copy to keep safe.
      if (!session?.writeRoomFrame(frame, onSafe)) onSafe?.();
    }
  }

  /**
   * After a welcome: the rooms the session record carries (the user's previous node kept them) are the user's here
   * too. Each home learns the member's new node and answers a fresh `joined` (without id); a room that removed the
   * member meanwhile sends it its own `left`, so it knows to join again. No member re-joins.
   */
  resumed(session: ClientSession): void {
    const rooms = session.record?.rooms ?? [];
    const userId = session.userId;
    for (const room of rooms) {
      if (!isValidRoomName(room)) continue;
      this.track(userId, room, true);
      // In the user's order: after the `away` its previous connection here sent, before its next room frames.
      void this.enqueue(userId, () => this.send({ op: 'resume', room, userId, nodeId: this.deps.nodeId })).then((answer) => {
        if (answer.status === 'joined') return void session.send({ type: 'joined', room, members: answer.members });
        if (answer.status === 'error' && answer.code === 'NOT_A_MEMBER') {
          this.track(userId, room, false);
          this.deps.saveRooms(session, [...(this.roomsOf.get(userId) ?? [])]);
          session.send({ type: 'member', room, userId, event: 'left' });
        }
      });
    }
  }

  /**
   * The user's connection ended without its clean close (it is moving, or a newer session replaced it): each home
   * holds the room's frames for it until its resume, starting with the room messages the connection left
   * unconfirmed. Nobody sees `left` unless the user stays away past the window.
   */
  moving(session: ClientSession): void {
    const userId = session.userId;
    const unconfirmed = session.receipts?.takeRoomFrames() ?? [];
    const rooms = this.roomsOf.get(userId);
    if (!rooms) return void unconfirmed.forEach((entry) => entry.onSafe?.());
    for (const room of rooms) {
      const entries = unconfirmed.filter(({ roomFrame: f }) => 'room' in f && f.room === room);
      const frames = entries.map((entry) => entry.roomFrame);
      // Safe once the home holds them (it persists what it holds), or once it could not be reached.
      const handedBack = (): void => entries.forEach((entry) => entry.onSafe?.());
      void this.enqueue(userId, () => this.send({ op: 'away', room, userId, nodeId: this.deps.nodeId, frames })).then(handedBack, handedBack);
    }
    for (const entry of unconfirmed) if (!rooms.has((entry.roomFrame as { room?: string }).room ?? '')) entry.onSafe?.();
    // Its next node keeps its rooms now (they ride in the session record); a newer connection here re-adds them.
    if (!this.deps.connection(userId)) this.roomsOf.delete(userId);
  }

  /** Runs `task` after the user's earlier room operations (one order per user towards the homes). */
  private enqueue<T>(userId: string, task: () => Promise<T>): Promise<T> {
    const run = (this.tails.get(userId) ?? Promise.resolve()).then(task);
    const tail = run.catch((error: unknown) => this.deps.log.error({ userId, err: error }, 'room operation failed'));
    this.tails.set(userId, tail);
    void tail.then(() => {
      if (this.tails.get(userId) === tail) this.tails.delete(userId);
    });
    return run;
  }

  /** A user who left (its own clean close, a terminal close): it leaves every room, `left` to the others. */
  userLeft(userId: string): void {
    const rooms = this.roomsOf.get(userId);
    if (!rooms) return;
    this.roomsOf.delete(userId);
    for (const room of rooms) void this.send({ op: 'leave', room, userId, nodeId: this.deps.nodeId });
  }

  /**
   * A fan-out copy from a home on another node (counted for the metrics). Copies that wait for receipts here are
   * journaled before the home gets its answer: a SIGKILL of this node must not lose what the home acked (the home
   * reads this node's journal when such a member resumes elsewhere).
   */
  async deliverRemote(room: string, to: string[], frame: ServerFrame): Promise<string[]> {
    this.remoteFanouts += 1;
    const copies: TrackedCopy[] = [];
    const missed = this.deliver(to, frame, copies);
    if (copies.length > 0) await this.deps.journal.record(room, 0, frame, copies);
    return missed;
  }

  /**
   * What a home fans out: written to each listed member that has its connection here; returns those that have not.
   * `copies` (a room message from a home on this node) gets each copy written to a connection with receipts on: it
   * lives only in this node's memory until confirmed (see ClientSession.writeRoomFrame), so the home journals it.
   */
  deliver(to: string[], frame: ServerFrame, copies?: TrackedCopy[]): string[] {
    const missed: string[] = [];
    const room = (frame as { room?: string }).room ?? '';
    const keptIfUnconfirmed = copies !== undefined && frame.type === 'message' && 'id' in frame && frame.id !== undefined;
    for (const userId of to) {
      let onSafe: (() => void) | undefined;
      if (keptIfUnconfirmed && this.deps.connection(userId)?.receipts !== undefined) {
        copies.push({ userId, safe: new Promise<void>((resolve) => (onSafe = resolve)) });
      }
      const early = this.joining.get(`${userId}\u0000${room}`);
      if (early) {
        early.push(onSafe ? { frame, onSafe } : { frame });
        continue;
      }
      const connection = this.deps.connection(userId);
      if (!connection?.isOpen || !connection.writeRoomFrame(frame, onSafe)) {
        missed.push(userId);
        // Not written: the home holds it for the member, and persists the hold before it answers.
        onSafe?.();
      }
    }
    return missed;
  }

  private answer(session: ClientSession, frame: JoinFrame | LeaveFrame | RoomMessageFrame, answer: RoomAnswer): void {
    const { room, id } = frame;
    if (answer.status === 'error') return void session.sendError(answer.code, ERROR_TEXT[answer.code], id);
    if (answer.status === 'joined') {
      if (!this.roomsOf.get(session.userId)?.has(room)) {
        this.track(session.userId, room, true);
        this.deps.saveRooms(session, [...(this.roomsOf.get(session.userId) ?? [])]);
      }
      return void session.send({ type: 'joined', room, members: answer.members, ...(id === undefined ? {} : { id }) });
    }
    if (frame.type === 'leave' && this.roomsOf.get(session.userId)?.has(room)) {
      this.track(session.userId, room, false);
      this.deps.saveRooms(session, [...(this.roomsOf.get(session.userId) ?? [])]);
    }
    if (id !== undefined) session.send({ type: 'ack', id });
  }

  private track(userId: string, room: string, member: boolean): void {
    const rooms = this.roomsOf.get(userId) ?? new Set<string>();
    if (member) rooms.add(room);
    else rooms.delete(room);
    if (rooms.size > 0) this.roomsOf.set(userId, rooms);
    else this.roomsOf.delete(userId);
  }

  /**
   * To the room's home. A home that does not answer is left out of the room's order for this operation and the next
   * one is tried, with a short backoff, for up to HOME_RETRY_MS: a crashed home stays in the registry until its
   * lease expires, and every node that finds it dead skips it the same way, so they agree on the next home.
   */
  private async send(op: RoomOp): Promise<RoomAnswer> {
    const deadline = Date.now() + HOME_RETRY_MS;
    const skipped = new Set<string>();
    for (let attempt = 0; ; attempt++) {
      const home = this.homeOf(op.room, skipped);
      if (home === this.deps.nodeId) return this.deps.home.handle(op);
      const address = this.deps.nodes().get(home)?.internalAddress;
      try {
        if (address !== undefined) return await this.deps.transport.post<RoomAnswer>(address, ROOM_OP_PATH, op);
      } catch (error) {
        this.deps.log.warn({ room: op.room, home, err: error }, 'room home did not answer');
      }
      skipped.add(home);
      if (Date.now() >= deadline) return { status: 'error', code: 'RELAY_FAILED' };
      await new Promise((resolve) => setTimeout(resolve, Math.min(500, 50 * 2 ** attempt)));
    }
  }
}
