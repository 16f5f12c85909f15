import { BoundedMap } from './bounded-map.js';

/**
 * Users whose connection on this node ended without their own clean close, for the resume window (v1.1): a message
 * that reaches this node for one of them is answered `moving`, so its sender's node holds it until the user is back.
 * Bounded: the oldest entries go first when the table is full.
 */
export class Departures {
  readonly #until: BoundedMap<string, number>;

  constructor(
    private readonly windowMs: number,
    max: number,
  ) {
    this.#until = new BoundedMap(max);
  }

  mark(userId: string, now = Date.now()): void {
    this.#until.set(userId, now + this.windowMs);
  }

  has(userId: string, now = Date.now()): boolean {
    const until = this.#until.get(userId);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#until.delete(userId);
    return false;
  }

  /** When the user's connection here ended (ms), while it is moving. */
  movedAt(userId: string, now = Date.now()): number | undefined {
    return this.has(userId, now) ? (this.#until.get(userId) as number) - this.windowMs : undefined;
  }

  /** The user is back on this node. */
  clear(userId: string): void {
    this.#until.delete(userId);
  }

  /** Drops expired entries (called now and then, so the table does not keep users who never came back). */
  sweep(now = Date.now()): void {
    for (const [userId, until] of this.#until) if (until <= now) this.#until.delete(userId);
  }
}
