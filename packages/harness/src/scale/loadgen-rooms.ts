/**
 * The rooms of the scale run's load generator (v1.2): members that connect with their room's name, join it once
 * (after a reconnect the server keeps the membership, as the SDK assumes), and send room messages; plus the running
 * totals the run reads at the edges of its measurement windows.
 */
import { performance } from 'node:perf_hooks';
import { percentiles, type Percentiles } from '../stats.js';

export interface RoomArgs {
  rooms: number;
  membersPerRoom: number;
  prefix: string;
  concurrency: number;
}

/** What a room member adds to a load-generator client. */
export interface RoomMember {
  id: string;
  room?: string;
  /** The room's other members (the load generator holds them all). */
  peers?: RoomMember[];
  /** Its `joined` (with the join's id) arrived: it sends room messages from now on, and joins again only if removed. */
  joined?: boolean;
  nodeId?: string | undefined;
  open: boolean;
  ws?: { send(data: string): void };
}

/**
 * Totals since the load generator started, never reset: the run takes them at the edges of a window and subtracts.
 * Pairs: receipts by whether the two sides were on different nodes when sent. Rooms: sends, acks, copies received.
 */
export interface LoadTotals {
  pairSent: number;
  pairCross: number;
  pairSame: number;
  roomSent: number;
  roomAcked: number;
  roomReceived: number;
  /** Room messages sent while some other member of the room was on another node than the sender (as the load generator saw it). */
  roomSpread: number;
  roomErrors: number;
}

export const totals: LoadTotals = { pairSent: 0, pairCross: 0, pairSame: 0, roomSent: 0, roomAcked: 0, roomReceived: 0, roomSpread: 0, roomErrors: 0 };

export interface RoomFigures {
  members: number;
  joined: number;
  /** Over the join/drain phase (from startPhase): sends, acks, copies received (each send should reach membersPerRoom − 1). */
  sent: number;
  acked: number;
  received: number;
  errors: Record<string, number>;
  skipped: number;
  /** Times a member got its own `left` (away past the resume window, or over a held cap) and joined again. */
  removed: number;
  /** Sender to each other member, per copy received. */
  latency: Percentiles;
}

/** Room members and their phase figures. */
export class RoomLoad {
  readonly members: RoomMember[] = [];
  private phase = { sent: 0, acked: 0, received: 0, skipped: 0, removed: 0 };
  private readonly errors = new Map<string, number>();
  private latencies: number[] = [];
  private nextId = 0;

  /** Builds `rooms` × `membersPerRoom` members; `make` registers each as a client of the load generator. */
  create<T extends RoomMember>(args: RoomArgs, make: (id: string) => T): T[] {
    const made: T[] = [];
    for (let r = 0; r < args.rooms; r += 1) {
      const room = `${args.prefix}-${String(r)}`;
      const group = Array.from({ length: args.membersPerRoom }, (_, m) => make(`${room}-m${String(m)}`));
      for (const member of group) {
        member.room = room;
        member.peers = group.filter((other) => other !== member);
      }
      made.push(...group);
    }
    this.members.push(...made);
    return made;
  }

  /** After a welcome: the first one joins; later ones (a drain's reconnect) need nothing, the node resumes the rooms. */
  welcomed(member: RoomMember): void {
    if (member.joined || !member.room || !member.ws) return;
    member.ws.send(JSON.stringify({ type: 'join', room: member.room, id: `j${member.id}` }));
  }

  /** A frame about rooms, or an ack/error of a room message; returns false when the frame is not the rooms'. */
  onFrame(member: RoomMember, frame: { type: string; room?: string; id?: string; code?: string; userId?: string; event?: string; content?: { t?: number } }): boolean {
    if (frame.type === 'joined') {
      if (frame.id !== undefined) member.joined = true;
      return true;
    }
    if (frame.type === 'member') {
      // Its own `left` (contract v1.2): the room removed it, so it joins again, as an app would.
      if (frame.userId === member.id && frame.event === 'left' && member.joined === true) {
        member.joined = false;
        this.phase.removed += 1;
        member.ws?.send(JSON.stringify({ type: 'join', room: member.room, id: `j${member.id}-again` }));
      }
      return true;
    }
    if (frame.type === 'message' && frame.room !== undefined) {
      totals.roomReceived += 1;
      this.phase.received += 1;
      if (typeof frame.content?.t === 'number') this.latencies.push(performance.now() - frame.content.t);
      return true;
    }
    if (!frame.id?.startsWith('r') && !frame.id?.startsWith('j')) return false;
    if (frame.type === 'ack') {
      totals.roomAcked += 1;
      this.phase.acked += 1;
    } else if (frame.type === 'error') {
      if (frame.id.startsWith('r')) totals.roomErrors += 1;
      const code = `${frame.id.startsWith('j') ? 'join ' : ''}${frame.code ?? '?'}`;
      this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    }
    return true;
  }

  send(member: RoomMember): void {
    if (!member.room) return;
    if (!member.open || !member.ws || !member.joined) return void (this.phase.skipped += 1);
    const spread = member.peers?.some((p) => p.nodeId !== undefined && p.nodeId !== member.nodeId) ? 1 : 0;
    totals.roomSent += 1;
    totals.roomSpread += spread;
    this.phase.sent += 1;
    this.nextId += 1;
    member.ws.send(`{"type":"message","room":"${member.room}","id":"r${String(this.nextId)}","content":{"t":${String(performance.now())},"c":${String(spread)}}}`);
  }

  /** Members whose `joined` arrived. */
  get joinedCount(): number {
    return this.members.filter((m) => m.joined).length;
  }

  /** Room messages without an ack or error yet (over the whole run). */
  unanswered(): number {
    return totals.roomSent - totals.roomAcked - totals.roomErrors;
  }

  startPhase(): void {
    this.phase = { sent: 0, acked: 0, received: 0, skipped: 0, removed: 0 };
    this.errors.clear();
    this.latencies = [];
  }

  figures(): RoomFigures {
    return { members: this.members.length, joined: this.joinedCount, ...this.phase, errors: Object.fromEntries(this.errors), latency: percentiles(this.latencies) };
  }
}
