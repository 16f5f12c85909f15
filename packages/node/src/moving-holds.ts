import { Backoff } from '@messaging-server/protocol';
import { insertInOrder, type Envelope } from './envelope.js';
import { heldCostOf, type HeldBudget } from './held-budget.js';

/** Where a held user turned up again; the router dispatches the released messages there. */
export type Whereabouts = { kind: 'self'; acked: boolean } | { kind: 'remote'; nodeId: string };

export interface MovingHoldsDeps {
  /** The resume window: a held message is answered EXPIRED this long after its user started moving. */
  windowMs: number;
  perRecipientMax: number;
  /** The node's byte caps on held messages, shared with the pending queues. */
  budget: HeldBudget;
  /** Where the user is now, once it came back (a live session on a live node); undefined while it is away. */
  whereNow(userId: string): Promise<Whereabouts | undefined>;
  /**
   * True while messages to the user routed before its hold are still on their way to the node it left: they may come
   * back as moving, and must join the hold before it goes, or they would arrive after later ones.
   */
  inFlight(userId: string): boolean;
  /** Hands released messages, oldest first, back to the router. */
  release(envelopes: Envelope[], where: Whereabouts): void;
  /** The user did not come back in time. */
  expire(envelope: Envelope): void;
}

interface Hold {
  envelopes: Envelope[];
  /** When the user started moving, as far as this node knows: every message held for it shares that window. */
  movedAt: number;
  /** The earliest deadline of its messages: the hold ends (EXPIRED) then at the latest. */
  deadline: number;
  backoff: Backoff;
  timer: NodeJS.Timeout | undefined;
  timerAt: number;
  looking: boolean;
}

/** How soon a hold whose user is back looks again while earlier messages to its old node are still unanswered. */
const SETTLE_AGAIN_MS = 20;
/** How soon a holder first looks for a user that moved, and how rarely at most while it stays away. */
const LOOK_AGAIN = { initialMs: 50, maxMs: 1000, jitter: 0.5 } as const;

/**
 * Messages for users who are moving between nodes (contract v1.1), held on this node until the user is back, in
 * the order they were routed. The holder learns where the user came back by looking up its session: first 50 ms
 * after the hold began, then with backoff up to once a second, once per held user (never per message), and at once
 * when the user is welcomed on this node. Nothing per user goes to etcd. At the end of the window every message of
 * a user still away gets EXPIRED.
 */
export class MovingHolds {
  readonly #holds = new Map<string, Hold>();
  #total = 0;
  #stopped = false;

  constructor(private readonly deps: MovingHoldsDeps) {}

  get size(): number {
    return this.#total;
  }

  has(userId: string): boolean {
    return this.#holds.has(userId);
  }

  /** True once stopped (the end of a drain): nothing more can be held. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Holds a message for its moving recipient. `movedAt` (ms) is when the user started moving, as far as this node
   * knows; a message that was held before keeps its first deadline. False when a cap is reached (QUEUE_FULL).
   */
  hold(envelope: Envelope, movedAt?: number): boolean {
    if (this.#stopped) return false;
    const hold = this.#holds.get(envelope.to);
    if ((hold?.envelopes.length ?? 0) >= this.deps.perRecipientMax) return false;
    const cost = heldCostOf(envelope);
    if (!this.deps.budget.reserve(envelope.from, envelope.to, cost)) return false;
    envelope.heldCost = cost;
    const now = Date.now();
    const since = Math.min(movedAt ?? now, hold?.movedAt ?? now);
    // Clamped to [now, now + window]: another node's clock may run ahead or behind (movedAt comes from it).
    envelope.holdUntil ??= Math.min(now + this.deps.windowMs, Math.max(now, since + this.deps.windowMs));
    this.#total += 1;
    if (hold) {
      hold.movedAt = since;
      insertInOrder(hold.envelopes, envelope);
      hold.deadline = Math.min(hold.deadline, envelope.holdUntil);
      if (hold.deadline < hold.timerAt) this.arm(envelope.to, hold, hold.deadline);
      return true;
    }
    const created: Hold = {
      envelopes: [envelope],
      movedAt: since,
      deadline: envelope.holdUntil,
      backoff: new Backoff(LOOK_AGAIN),
      timer: undefined,
      timerAt: Number.POSITIVE_INFINITY,
      looking: false,
    };
    this.#holds.set(envelope.to, created);
    this.schedule(envelope.to, created);
    return true;
  }

  /** The user was welcomed here: its messages go at once. */
  resumeHere(userId: string): void {
    const hold = this.#holds.get(userId);
    if (!hold) return;
    if (this.deps.inFlight(userId)) this.arm(userId, hold, Date.now() + SETTLE_AGAIN_MS);
    else this.releaseTo(userId, hold, { kind: 'self', acked: true });
  }

  /**
   * Drops the held messages `orphaned` picks (a drain: messages of senders whose connections it closed; they send
   * them again from their next node), releasing their bytes. Returns how many went.
   */
  discard(orphaned: (envelope: Envelope) => boolean): number {
    let dropped = 0;
    for (const [userId, hold] of this.#holds) {
      const gone = hold.envelopes.filter(orphaned);
      if (gone.length === 0) continue;
      hold.envelopes = hold.envelopes.filter((e) => !orphaned(e));
      for (const envelope of gone) this.unreserve(envelope);
      this.#total -= gone.length;
      dropped += gone.length;
      if (hold.envelopes.length > 0) continue;
      if (hold.timer) clearTimeout(hold.timer);
      this.#holds.delete(userId);
    }
    return dropped;
  }

  /** Stops every timer; returns what was held (the node is closing). */
  stop(): Envelope[] {
    this.#stopped = true;
    const all: Envelope[] = [];
    for (const [userId, hold] of this.#holds) {
      if (hold.timer) clearTimeout(hold.timer);
      this.#holds.delete(userId);
      all.push(...hold.envelopes);
    }
    this.#total = 0;
    for (const envelope of all) this.unreserve(envelope);
    return all;
  }

  /** The next look: after the backoff, or at the hold's deadline if that comes first. */
  private schedule(userId: string, hold: Hold): void {
    this.arm(userId, hold, Math.min(Date.now() + hold.backoff.next(), hold.deadline));
  }

  private arm(userId: string, hold: Hold, at: number): void {
    if (hold.timer) clearTimeout(hold.timer);
    hold.timerAt = at;
    hold.timer = setTimeout(() => void this.look(userId, hold), Math.max(0, at - Date.now()));
    hold.timer.unref();
  }

  private async look(userId: string, hold: Hold): Promise<void> {
    hold.timer = undefined;
    hold.timerAt = Number.POSITIVE_INFINITY;
    if (this.#holds.get(userId) !== hold || hold.looking) return;
    this.expireDue(userId, hold);
    if (this.#holds.get(userId) !== hold) return;
    hold.looking = true;
    let where: Whereabouts | undefined;
    try {
      where = await this.deps.whereNow(userId);
    } catch {
      where = undefined;
    } finally {
      hold.looking = false;
    }
    if (this.#holds.get(userId) !== hold) return;
    if (!where) this.schedule(userId, hold);
    else if (this.deps.inFlight(userId)) this.arm(userId, hold, Date.now() + SETTLE_AGAIN_MS);
    else this.releaseTo(userId, hold, where);
  }

  /** Answers EXPIRED for the messages whose window ended; drops the hold when none is left. */
  private expireDue(userId: string, hold: Hold): void {
    const now = Date.now();
    const due = hold.envelopes.filter((e) => (e.holdUntil ?? 0) <= now);
    if (due.length === 0) return;
    hold.envelopes = hold.envelopes.filter((e) => (e.holdUntil ?? 0) > now);
    this.#total -= due.length;
    for (const envelope of due) this.unreserve(envelope);
    if (hold.envelopes.length === 0) this.#holds.delete(userId);
    else hold.deadline = Math.min(...hold.envelopes.map((e) => e.holdUntil ?? now));
    for (const envelope of due) this.deps.expire(envelope);
  }

  private releaseTo(userId: string, hold: Hold, where: Whereabouts): void {
    if (hold.timer) clearTimeout(hold.timer);
    this.#holds.delete(userId);
    this.#total -= hold.envelopes.length;
    for (const envelope of hold.envelopes) this.unreserve(envelope);
    this.deps.release(hold.envelopes, where);
  }

  private unreserve(envelope: Envelope): void {
    this.deps.budget.release(envelope.from, envelope.to, envelope.heldCost ?? 0);
    envelope.heldCost = undefined;
  }
}

/** A session record's `movedAt` in ms; now when it is missing or garbled. */
export function movedAtOf(iso: string | undefined): number {
  const at = iso === undefined ? Number.NaN : Date.parse(iso);
  return Number.isNaN(at) ? Date.now() : at;
}
