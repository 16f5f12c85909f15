import type { ServerFrame } from '@messaging-server/protocol';
import type { Envelope } from './envelope.js';

/** One message written to a connection with receipts on and not confirmed yet. */
export interface Written {
  seq: number;
  at: number;
  /** Kept only for messages with an id: an id-less one is never delivered again (v1.1's at most once). */
  envelope: Envelope | undefined;
  /** Bytes it holds in the node's HeldBudget until it is confirmed or leaves with its connection. */
  cost: number;
  /** v1.2: a room message with an id (its home takes it back when the connection ends unconfirmed). */
  roomFrame?: ServerFrame;
  /**
   * v1.2: called once the room message is safe outside this node's memory: confirmed, or handed back to its room's
   * home (which persists it) when the connection ended. Until then its home's journal keeps it (room-journal.ts).
   */
  onSafe?: () => void;
}

/** An unconfirmed room message with an id. */
export type RoomWritten = Written & { roomFrame: ServerFrame };

/** Contract v1.2: any one message unconfirmed this long means the connection is dead. */
export const RECEIPT_STALL_MS = 10_000;
/**
 * How long a connection may stay over its MSG_MAX_UNCONFIRMED before it is cut: a client confirms within 200 ms, so a
 * live one is back under the threshold by then. Cutting at once would cut every client whose next welcome brings
 * more than the threshold of held messages in one burst, again after each welcome, until they expire.
 */
export const OVER_THRESHOLD_GRACE_MS = 1000;

/**
 * The receipts of one connection opened with `receipts=1` (contract v1.2): the seq of every message written to it,
 * and what was written and not confirmed yet, oldest first. A cumulative receipt takes everything up to its seq. More
 * than `max` unconfirmed for OVER_THRESHOLD_GRACE_MS, or one of them older than `stallMs`, calls `stalled` (the
 * session closes with 4006). Timers per connection, not per message: armed only while something is unconfirmed (or
 * over the threshold), and re-armed lazily.
 */
export class Unconfirmed {
  #last = 0;
  #confirmed = 0;
  #entries: Written[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined;
  #overTimer: NodeJS.Timeout | undefined;
  #done = false;

  constructor(
    private readonly max: number,
    private readonly stalled: () => void,
    private readonly stallMs = RECEIPT_STALL_MS,
  ) {}

  /** The seq the next message written will carry. */
  get nextSeq(): number {
    return this.#last + 1;
  }

  /** Messages written and not confirmed (id-less ones included). */
  get count(): number {
    return this.#last - this.#confirmed;
  }

  /** The message with seq `nextSeq` was written. */
  written(envelope: Envelope | undefined, cost: number, now = Date.now(), roomFrame?: ServerFrame, onSafe?: () => void): void {
    if (this.#done) return void onSafe?.();
    this.#last += 1;
    const entry: Written = { seq: this.#last, at: now, envelope, cost };
    if (roomFrame) entry.roomFrame = roomFrame;
    if (onSafe) entry.onSafe = onSafe;
    this.#entries.push(entry);
    if (this.#timer === undefined) this.arm(now + this.stallMs, now);
    if (this.count > this.max && this.#overTimer === undefined) {
      this.#overTimer = setTimeout(() => this.checkOver(), OVER_THRESHOLD_GRACE_MS);
      this.#overTimer.unref();
    }
  }

  /** A receipt for everything up to `seq`; returns what it confirmed, oldest first. Seqs not yet written are ignored. */
  confirm(seq: number): Written[] {
    const upTo = Math.min(seq, this.#last);
    if (upTo <= this.#confirmed) return [];
    this.#confirmed = upTo;
    let end = this.#head;
    while (end < this.#entries.length && (this.#entries[end] as Written).seq <= upTo) end += 1;
    const confirmed = this.#entries.slice(this.#head, end);
    this.#head = end;
    if (this.#head === this.#entries.length) {
      this.#entries = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
    return confirmed;
  }

  /**
   * The connection ended: its unconfirmed room messages, oldest first, taken out (they go back to their rooms'
   * homes, and are safe once a home has them; takeAll then returns the direct messages). Tracking goes on until
   * takeAll.
   */
  takeRoomFrames(): RoomWritten[] {
    const rooms: RoomWritten[] = [];
    const rest: Written[] = [];
    for (const entry of this.#entries.slice(this.#head)) {
      if (entry.roomFrame) rooms.push(entry as RoomWritten);
      else rest.push(entry);
    }
    this.#entries = rest;
    this.#head = 0;
    return rooms;
  }

  /** The connection ended: everything still unconfirmed, oldest first. Nothing more is tracked. */
  takeAll(): Written[] {
    this.#done = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#overTimer) clearTimeout(this.#overTimer);
    this.#timer = undefined;
    this.#overTimer = undefined;
    const left = this.#entries.slice(this.#head);
    this.#entries = [];
    this.#head = 0;
    return left;
  }

  private arm(at: number, now: number): void {
    this.#timer = setTimeout(() => this.check(), Math.max(0, at - now));
    this.#timer.unref();
  }

  private checkOver(): void {
    this.#overTimer = undefined;
    if (!this.#done && this.count > this.max) this.stalled();
  }

  private check(): void {
    this.#timer = undefined;
    const oldest = this.#entries[this.#head];
    if (this.#done || oldest === undefined) return;
    const now = Date.now();
    if (now - oldest.at >= this.stallMs) this.stalled();
    else this.arm(oldest.at + this.stallMs, now);
  }
}
