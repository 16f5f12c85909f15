import type { Envelope } from './envelope.js';
import { heldCostOf, type HeldBudget } from './held-budget.js';

interface Held {
  envelope: Envelope;
  expiresAt: number;
  /** Bytes reserved in the budget for it. */
  cost: number;
}

/**
 * Messages held for recipients whose session is on this node but who have not opened SockJS yet.
 * At most `perRecipientMax` per recipient, and within the byte caps of `budget` per recipient, per sender and per
 * node (beyond: QUEUE_FULL); each expires after
 * `ttlMs` and is handed to `onExpired` (the caller reports EXPIRED). One timer, armed for the earliest expiry.
 */
export class PendingQueues {
  private readonly queues = new Map<string, Held[]>();
  private total = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly perRecipientMax: number,
    private readonly budget: HeldBudget,
    private readonly ttlMs: number,
    private readonly onExpired: (envelope: Envelope) => void,
  ) {}

  get size(): number {
    return this.total;
  }

  has(userId: string): boolean {
    return this.queues.has(userId);
  }

  add(envelope: Envelope, now = Date.now()): 'held' | 'full' {
    const queue = this.queues.get(envelope.to) ?? [];
    if (queue.length >= this.perRecipientMax) return 'full';
    // A forwarded message carries no frame size: its content's is measured once, here.
    const cost = heldCostOf(envelope);
    if (!this.budget.reserve(envelope.from, envelope.to, cost)) return 'full';
    if (queue.length === 0) this.queues.set(envelope.to, queue);
    const expiresAt = now + this.ttlMs;
    queue.push({ envelope, expiresAt, cost });
    this.total += 1;
    this.arm(expiresAt);
    return 'held';
  }

  /** Removes and returns the recipient's messages, oldest first. */
  take(userId: string): Envelope[] {
    const queue = this.queues.get(userId);
    if (!queue) return [];
    this.queues.delete(userId);
    this.total -= queue.length;
    for (const held of queue) this.budget.release(held.envelope.from, userId, held.cost);
    return queue.map((h) => h.envelope);
  }

  /** Removes and returns everything (shutdown). */
  takeAll(): Envelope[] {
    const all: Envelope[] = [];
    for (const userId of [...this.queues.keys()]) all.push(...this.take(userId));
    this.disarm();
    return all;
  }

  /** Drops everything. Releases only its own reservations: the byte budget is shared with the moving holds. */
  close(): void {
    this.takeAll();
  }

  private arm(at: number): void {
    if (at >= this.timerAt) return;
    this.disarm();
    this.timerAt = at;
    this.timer = setTimeout(() => this.sweep(), Math.max(0, at - Date.now()));
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  private sweep(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    const expired: Envelope[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const [userId, queue] of this.queues) {
      // Same TTL for all, so each queue is in expiry order: drop from the head.
      let n = 0;
      while (n < queue.length && (queue[n] as Held).expiresAt <= now) n += 1;
      if (n > 0) {
        for (const held of queue.splice(0, n)) {
          this.budget.release(held.envelope.from, userId, held.cost);
          expired.push(held.envelope);
        }
        this.total -= n;
      }
      const head = queue[0];
      if (head) next = Math.min(next, head.expiresAt);
      else this.queues.delete(userId);
    }
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
    for (const envelope of expired) this.onExpired(envelope);
  }
}
