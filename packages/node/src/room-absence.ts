import type { ServerFrame } from '@messaging-server/protocol';
import { HELD_OVERHEAD_BYTES, type HeldBudget } from './held-budget.js';

/** One room frame the home holds for a member that is away. */
export interface HeldRoomFrame {
  frame: ServerFrame;
  /** Whose bytes it counts against in the HeldBudget (the sender, or the member an event is about). */
  from: string;
  cost: number;
}

/**
 * A member of a room homed here whose connection is gone, as far as the home knows (contract v1.2, "Members outlive
 * moves"). `suspect` means the home does not know that: it loaded the room after a handover, or the member's node
 * left the registry; the sweep checks the member's session once the window has passed.
 */
export interface Away {
  since: number;
  held: HeldRoomFrame[];
  suspect: boolean;
}

/** What the sweep does with a member whose window passed, from its session record. */
export type Presence = { kind: 'here'; nodeId: string } | { kind: 'moving'; movedAt: number } | { kind: 'gone' };

/**
 * The away members of one room and what is held for them, in the room's order, within the node's held-message
 * budgets (the same HeldBudget and per-recipient count as direct messages: clarification "Held-message caps").
 */
export class RoomAbsences {
  readonly #away = new Map<string, Away>();

  constructor(
    private readonly budget: HeldBudget,
    private readonly perMemberMax: number,
  ) {}

  get(userId: string): Away | undefined {
    return this.#away.get(userId);
  }

  /** True when frames for the member must be held, not sent: it is known to be away (not merely suspect). */
  holding(userId: string): boolean {
    const away = this.#away.get(userId);
    return away !== undefined && !away.suspect;
  }

  entries(): IterableIterator<[string, Away]> {
    return this.#away.entries();
  }

  /** The member is away from now on (kept: an earlier start of its absence). */
  mark(userId: string, now = Date.now()): Away {
    const away = this.#away.get(userId);
    if (away) {
      away.suspect = false;
      return away;
    }
    const created: Away = { since: now, held: [], suspect: false };
    this.#away.set(userId, created);
    return created;
  }

  /** The home cannot tell whether the member is connected: the sweep checks its session after the window. */
  suspect(userId: string, now = Date.now()): void {
    if (!this.#away.has(userId)) this.#away.set(userId, { since: now, held: [], suspect: true });
  }

  /**
   * Holds frames for the member, after what it holds (or before: frames its connection left unconfirmed are older
   * than anything held since). False, with nothing held, when a cap would pass: the caller removes the member.
   */
  hold(userId: string, frames: ServerFrame[], front = false): boolean {
    const away = this.mark(userId);
    if (away.held.length + frames.length > this.perMemberMax) return false;
    const added: HeldRoomFrame[] = [];
    for (const frame of frames) {
      const from = frameOwner(frame, userId);
      const cost = JSON.stringify(frame).length + HELD_OVERHEAD_BYTES;
      if (!this.budget.reserve(from, userId, cost)) {
        for (const entry of added) this.budget.release(entry.from, userId, entry.cost);
        return false;
      }
      added.push({ frame, from, cost });
    }
    away.held = front ? [...added, ...away.held] : [...away.held, ...added];
    return true;
  }

  /** The member is back (or removed): its frames, oldest first, and their bytes released. */
  take(userId: string): ServerFrame[] {
    const away = this.#away.get(userId);
    if (!away) return [];
    this.#away.delete(userId);
    for (const entry of away.held) this.budget.release(entry.from, userId, entry.cost);
    return away.held.map((entry) => entry.frame);
  }

  /** A frame fanned out to a suspect member reached its connection: it is here after all. */
  present(userId: string): void {
    const away = this.#away.get(userId);
    if (away?.suspect === true && away.held.length === 0) this.#away.delete(userId);
  }

  /** What is held, per member, oldest first (what the home writes into the room's record). */
  heldFrames(): Map<string, ServerFrame[]> {
    const out = new Map<string, ServerFrame[]>();
    for (const [userId, away] of this.#away) if (away.held.length > 0) out.set(userId, away.held.map((entry) => entry.frame));
    return out;
  }

  /** Everything held goes (the room is forgotten here). */
  clear(): void {
    for (const userId of [...this.#away.keys()]) this.take(userId);
  }
}

function frameOwner(frame: ServerFrame, member: string): string {
  if (frame.type === 'message' && 'from' in frame) return frame.from;
  if (frame.type === 'member') return frame.userId;
  return member;
}
