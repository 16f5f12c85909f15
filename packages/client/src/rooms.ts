import type { DeliveredRoomMessageFrame, JoinedFrame, JsonValue, MemberFrame } from '@messaging-server/protocol';
import { Emitter } from './emitter.js';
import { MessagingError } from './errors.js';
import type { Outbox } from './outbox.js';
import type { RepeatFilter } from './repeat-filter.js';


/**
 * Rooms (contract v1.2, "Rooms on the wire"). The server keeps memberships across reconnects, moves and node
 * failures, so the SDK never re-joins by itself: it only mirrors what the node tells it — `joined` (the answer to a
 * join, with its id, or a resync after a resume, without), `member` events, and room messages.
 */
export interface RoomMessage {
  from: string;
  room: string;
  content: JsonValue;
  id?: string;
}
export interface MemberEvent {
  userId: string;
  event: 'joined' | 'left';
}
/**
 * - `left`: this client called `leave()`.
 * - `removed`: the server removed this user (a `member` event naming itself `left`: it stayed away past the resume
 *   window, or its held room messages went over a cap). Join again to come back.
 * - `closed`: the client stopped (a clean close leaves every room on the server too).
 */
export type RoomCloseReason = 'left' | 'removed' | 'closed';

export interface RoomEvents {
  message: RoomMessage;
  /** Someone else joined or left, in the room's one order. */
  member: MemberEvent;
  /** The node resynced the member list after a resume (a `joined` without id); `members` is the new list. */
  members: readonly string[];
  closed: { reason: RoomCloseReason };
}

/** What a Room needs from its client: send a room frame through the client's outbox (ids, queueing, answers). */
export interface RoomLink {
  readonly userId: string;
  /** Sends `{...fields, id}` with a fresh id; resolves on the ack (or `joined`), rejects with the error code. */
  request(fields: Record<string, JsonValue>): Promise<void>;
}

/** Membership of one room as this client sees it. Obtain with `client.join(name)`. */
export class Room extends Emitter<RoomEvents> {
  readonly name: string;
  #members: string[];
  #closed = false;
  /** Events that arrived before `join()` resolved to the app; released on the next task so no listener misses them. */
  #held: (() => void)[] | undefined = [];
  readonly #link: RoomLink;
  readonly #onClose: (room: Room) => void;

  /** @internal created by the client on its `joined` answer */
  constructor(link: RoomLink, name: string, members: string[], onClose: (room: Room) => void) {
    super();
    this.#link = link;
    this.name = name;
    this.#members = [...members];
    this.#onClose = onClose;
  }

  /** Members in join order, this user included. */
  get members(): readonly string[] {
    return [...this.#members];
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** To every other member. Resolves once the room has taken it in its order; rejects with e.g. NOT_A_MEMBER. */
  send(content: JsonValue): Promise<void> {
    if (this.#closed) return Promise.reject(new MessagingError('NOT_A_MEMBER', `not in room ${this.name}`));
    return this.#link.request({ type: 'message', room: this.name, content });
  }

  /** Leaves the room; resolves on the node's ack. Nothing from the room reaches this object afterwards. */
  async leave(): Promise<void> {
    if (this.#closed) return;
    this.close('left');
    await this.#link.request({ type: 'leave', room: this.name });
  }

  /** @internal */
  close(reason: RoomCloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose(this);
    this.#deliver(() => this.emit('closed', { reason }));
  }

  /** @internal the join promise has resolved: hand over what was held, after the app's continuation attached listeners */
  release(): void {
    setTimeout(() => {
      const held = this.#held ?? [];
      this.#held = undefined;
      for (const emit of held) emit();
    }, 0);
  }

  /** @internal */
  resync(members: string[]): void {
    this.#members = [...members];
    this.#deliver(() => this.emit('members', [...members]));
  }

  /** @internal */
  onMember(userId: string, event: 'joined' | 'left'): void {
    if (event === 'joined' && !this.#members.includes(userId)) this.#members.push(userId);
    if (event === 'left') this.#members = this.#members.filter((m) => m !== userId);
    if (userId === this.#link.userId) {
      if (event === 'left') this.close('removed');
      return;
    }
    this.#deliver(() => this.emit('member', { userId, event }));
  }

  /** @internal */
  onMessage(message: RoomMessage): void {
    this.#deliver(() => this.emit('message', message));
  }

  #deliver(emit: () => void): void {
    if (this.#held) this.#held.push(emit);
    else emit();
  }
}

/** The rooms of one client, keyed by name; routes the node's room frames to them. */
export class RoomSet {
  readonly #rooms = new Map<string, Room>();

  constructor(
    private readonly link: RoomLink,
    private readonly repeats: RepeatFilter,
  ) {}

  get(name: string): Room | undefined {
    return this.#rooms.get(name);
  }

  async join(name: string): Promise<Room> {
    await this.link.request({ type: 'join', room: name });
    const room = this.#rooms.get(name);
    if (!room) throw new MessagingError('NOT_A_MEMBER', `removed from ${name}`);
    room.release();
    return room;
  }

  /** `joined` (settling the join it answers, after the Room is in place) and `member` frames. */
  onFrame(frame: JoinedFrame | MemberFrame, outbox: Outbox): void {
    if (frame.type === 'member') {
      this.onMember(frame);
      return;
    }
    this.onJoined(frame);
    if (frame.id !== undefined) outbox.settle(frame.id);
  }

  /** A join's answer or a resync. Returns the room for a join's answer (the caller settles the join's id). */
  onJoined(frame: JoinedFrame): Room | undefined {
    const members = Array.isArray(frame.members) ? frame.members : [];
    const existing = this.#rooms.get(frame.room);
    if (existing) {
      existing.resync(members);
      return existing;
    }
    // A resync for a room this client does not know (joined by an earlier instance of this user, or left here while
    // the node resumed it): the server counts us in, so mirror it; `join()` will hand out this Room.
    const room = new Room(this.link, frame.room, members, (r) => {
      if (this.#rooms.get(r.name) === r) this.#rooms.delete(r.name);
    });
    this.#rooms.set(frame.room, room);
    if (frame.id === undefined) room.release();
    return room;
  }

  onMember(frame: MemberFrame): void {
    this.#rooms.get(frame.room)?.onMember(frame.userId, frame.event);
  }

  /** Drops repeats by (from, id) within the room, as direct messages are dropped by (from, id). */
  onMessage(frame: DeliveredRoomMessageFrame): void {
    const room = this.#rooms.get(frame.room);
    if (!room) return;
    if (frame.id !== undefined && !this.repeats.admit(frame.from, `${frame.room}\u0000${frame.id}`)) return;
    const message: RoomMessage = { from: frame.from, room: frame.room, content: frame.content };
    if (frame.id !== undefined) message.id = frame.id;
    room.onMessage(message);
  }

  /** The client stopped for good. */
  closeAll(): void {
    for (const room of [...this.#rooms.values()]) room.close('closed');
  }
}

