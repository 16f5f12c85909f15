import { MessagingClient, isMessagingError, type ConnectOptions, type Room } from '@messaging-server/client';
import { halfOfPair, type Half } from './fleet.js';
import { Ledger, type LedgerTotals, type MessageRecord } from './ledger.js';

/**
 * Issue 23, acceptance 7 (second half): a few rooms ride through the same faults as the pairs. Every member connects
 * with `connect({ room })` (so the gateway homes it with its room) and joins; each member sends one numbered room
 * message per tick for the whole run. A room stream is (sender, room) → one other member: a send is one ledger
 * record on each of the sender's streams, all with the same number, settled by the one ack the room gives. The SDK
 * drops repeats by (from, room, id), so what is left must arrive exactly once per member, in the sender's order.
 * Rooms alternate between the receipts half and the v1.1 half, as pairs do.
 */

export interface RoomFleetOptions {
  gatewayUrls: string[];
  clock: () => number;
  rooms: number;
  members: number;
  intervalMs: number;
  maxInflight: number;
  /** The contract's resume window: how long before its removal a removed member may have been away. */
  windowMs: number;
  /** Puts a removal on the run's timeline. */
  record?: (event: string, detail: string) => void;
  sdk?: Partial<ConnectOptions>;
}

interface RoomMember {
  userId: string;
  client: MessagingClient;
  room?: Room;
  roomName: string;
  others: string[];
  inflight: number;
  half: Half;
  welcomes: string[];
}

export interface RoomHalfFigures {
  rooms: number;
  members: number;
  /** Room messages sent (one per `room.send`), and of those acked / errored. */
  sent: number;
  acked: number;
  errored: number;
  erroredByCode: Record<string, number>;
  /** Copies owed: every acked message times the members other than its sender. */
  copiesOwed: number;
  copiesDelivered: number;
  lost: number;
  duplicates: number;
  outOfOrder: number;
  unknownArrivals: number;
  repeatsDropped: number;
  /** Welcomes after each member's first: how often the faults moved the members (and their rooms' homes). */
  moves: number;
  /** Nodes the members were welcomed on over the run. */
  nodes: string[];
}

export interface RoomFigures {
  rooms: number;
  members: number;
  sent: number;
  acked: number;
  errored: number;
  /** Totals over every (sender, room) → member stream; `sent` there counts copies. */
  copies: LedgerTotals;
  /** Members the server removed (a `left` naming themselves) or whose client closed for good: who, why, when, where. */
  removed: string[];
  halves: Record<Half, RoomHalfFigures>;
}

const streamId = (from: string, room: string, to: string): string => `${from}@${room}>${to}`;

export class RoomFleet {
  readonly ledger: Ledger;
  private readonly members: RoomMember[] = [];
  /** Sends per member: [sent, acked, errors by code]. */
  private readonly sends = new Map<string, { sent: number; acked: number; errors: Record<string, number> }>();
  readonly removed: string[] = [];
  /** ms on the run's clock at which each removed member learnt it (the first time). */
  private readonly removedAt = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: RoomFleetOptions) {
    this.ledger = new Ledger(options.clock);
  }

  get size(): number {
    return this.members.length;
  }

  /** Connects every member and joins it; resolves once each sees all members of its room. */
  async start(): Promise<void> {
    const { rooms, members, gatewayUrls } = this.options;
    for (let r = 1; r <= rooms; r++) {
      const roomName = `chaos-room-${String(r)}`;
      const userIds = Array.from({ length: members }, (_, m) => `${roomName}-m${String(m + 1)}`);
      const half = halfOfPair(r);
      for (const [m, userId] of userIds.entries()) {
        const client = new MessagingClient({
          ...this.options.sdk,
          gatewayUrl: gatewayUrls[(r + m) % gatewayUrls.length] as string,
          userId,
          room: roomName,
          receipts: half === 'receipts',
        });
        const member: RoomMember = { userId, client, roomName, others: userIds.filter((u) => u !== userId), inflight: 0, half, welcomes: [] };
        this.members.push(member);
        this.sends.set(userId, { sent: 0, acked: 0, errors: {} });
        client.on('session', (session) => member.welcomes.push(session.nodeId));
        client.on('closed', (info) => {
          if (info.reason !== 'client') this.remove(member, `client closed: ${info.reason}`);
        });
        await client.start();
        const room = await client.join(roomName);
        member.room = room;
        room.on('message', (msg) => this.received(userId, msg.from, msg.room, msg.content));
        room.on('closed', ({ reason }) => {
          if (reason !== 'closed') this.remove(member, reason);
        });
      }
    }
    const deadline = Date.now() + 15_000;
    while (this.members.some((m) => (m.room?.members.length ?? 0) < members) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  private remove(member: RoomMember, why: string): void {
    const at = this.options.clock();
    if (!this.removedAt.has(member.userId)) this.removedAt.set(member.userId, at);
    this.removed.push(`${member.userId} (${why} at ${(at / 1000).toFixed(1)} s, on ${member.client.nodeId ?? '?'})`);
    this.options.record?.('room member removed', `${member.userId} (${why}) on ${member.client.nodeId ?? '?'}, welcomed on ${member.welcomes.join(' → ')}`);
  }

  private received(receiver: string, from: string, room: string, content: unknown): void {
    const seq = (content as { n?: unknown } | null)?.n;
    if (typeof seq === 'number') this.ledger.receive(streamId(from, room, receiver), seq);
  }

  startTraffic(): void {
    if (!this.timer) this.timer = setInterval(() => this.tick(), this.options.intervalMs);
  }

  stopTraffic(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    for (const member of this.members) {
      // As with pairs: only while open, so "the server said nothing" never blurs with "the client never sent it".
      const room = member.room;
      if (!room || room.closed || member.client.state !== 'open' || member.inflight >= this.options.maxInflight) continue;
      const streams = member.others.map((to) => streamId(member.userId, member.roomName, to));
      let seq = 0;
      for (const s of streams) seq = this.ledger.send(s);
      const counts = this.sends.get(member.userId) as { sent: number; acked: number; errors: Record<string, number> };
      counts.sent++;
      member.inflight++;
      room.send({ n: seq }).then(
        () => {
          member.inflight--;
          counts.acked++;
          for (const s of streams) this.ledger.settle(s, seq);
        },
        (error: unknown) => {
          member.inflight--;
          const code = isMessagingError(error) ? error.code : 'UNKNOWN';
          counts.errors[code] = (counts.errors[code] ?? 0) + 1;
          for (const s of streams) this.ledger.settle(s, seq, code);
        },
      );
    }
  }

  close(): void {
    this.stopTraffic();
    for (const m of this.members) m.client.close();
  }

  /**
   * The figures of the run. A removed member was a member until it may have gone away, one resume window before it
   * learnt of its removal: what was sent to it before then is judged, what came later is not.
   */
  figures(): RoomFigures {
    const judged = (stream: string, record: MessageRecord): boolean => {
      const removedAt = this.removedAt.get(stream.split('>')[1] as string);
      return removedAt === undefined || record.sentAt < removedAt - this.options.windowMs;
    };
    const half = (h: Half): RoomHalfFigures => this.halfFigures(h, judged);
    const halves = { receipts: half('receipts'), 'v1.1': half('v1.1') };
    return {
      rooms: this.options.rooms,
      members: this.members.length,
      sent: halves.receipts.sent + halves['v1.1'].sent,
      acked: halves.receipts.acked + halves['v1.1'].acked,
      errored: halves.receipts.errored + halves['v1.1'].errored,
      copies: this.ledger.totals(() => true, judged),
      removed: [...this.removed],
      halves,
    };
  }

  private halfFigures(h: Half, judged: (stream: string, record: MessageRecord) => boolean): RoomHalfFigures {
    const mine = this.members.filter((m) => m.half === h);
    const users = new Set(mine.map((m) => m.userId));
    const t = this.ledger.totals((s) => users.has(s.split('>')[1] as string), judged);
    const f: RoomHalfFigures = {
      rooms: new Set(mine.map((m) => m.roomName)).size,
      members: mine.length,
      sent: 0,
      acked: 0,
      errored: 0,
      erroredByCode: {},
      copiesOwed: t.acked,
      copiesDelivered: t.delivered,
      lost: t.silentlyLost,
      duplicates: t.duplicates,
      outOfOrder: t.ackedOutOfOrder,
      unknownArrivals: t.unknownArrivals,
      repeatsDropped: mine.reduce((n, m) => n + m.client.repeatsDropped, 0),
      moves: mine.reduce((n, m) => n + Math.max(0, m.welcomes.length - 1), 0),
      nodes: [...new Set(mine.flatMap((m) => m.welcomes))].sort(),
    };
    for (const m of mine) {
      const c = this.sends.get(m.userId) as { sent: number; acked: number; errors: Record<string, number> };
      f.sent += c.sent;
      f.acked += c.acked;
      for (const [code, n] of Object.entries(c.errors)) {
        f.errored += n;
        f.erroredByCode[code] = (f.erroredByCode[code] ?? 0) + n;
      }
    }
    return f;
  }
}

/** What must hold for the rooms (empty when it does): something judged, nothing lost, doubled or reordered. */
export function roomFailures(r: RoomFigures | undefined): string[] {
  if (!r) return [];
  const failures: string[] = [];
  if (r.sent === 0) failures.push('rooms: no room message was sent: nothing was judged');
  for (const [half, h] of Object.entries(r.halves)) {
    if (h.members > 0 && h.sent === 0) failures.push(`rooms, ${half} half: no room message was sent`);
    if (h.lost > 0) failures.push(`rooms, ${half} half: ${String(h.lost)} room message copies lost (acked, or never answered, and not delivered)`);
    if (h.duplicates > 0) failures.push(`rooms, ${half} half: ${String(h.duplicates)} room message copies delivered twice after the SDK dropped repeats`);
    if (h.outOfOrder > 0) failures.push(`rooms, ${half} half: ${String(h.outOfOrder)} acked room messages out of their sender's order`);
    if (h.unknownArrivals > 0) failures.push(`rooms, ${half} half: ${String(h.unknownArrivals)} room arrivals never sent`);
  }
  if (r.removed.length > 0) failures.push(`rooms: ${String(r.removed.length)} members removed or closed (${r.removed.slice(0, 3).join(', ')})`);
  return failures;
}
