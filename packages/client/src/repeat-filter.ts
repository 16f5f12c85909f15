/**
 * Drops repeats of `(from, id)` (contract v1.1: a message whose fate was unknown when its recipient moved is delivered
 * again, and senders re-send what was unanswered after they reconnect). Remembers the last `capacity` pairs, oldest
 * forgotten first, so memory stays bounded however long the client lives.
 */
export class RepeatFilter {
  readonly #seen = new Set<string>();
  #dropped = 0;

  constructor(private readonly capacity = 4096) {}

  /** Repeats dropped so far. */
  get dropped(): number {
    return this.#dropped;
  }

  /** True the first time this pair is seen (deliver it), false for a repeat (drop it). */
  admit(from: string, id: string): boolean {
    const key = `${from}\u0000${id}`;
    if (this.#seen.has(key)) {
      this.#dropped += 1;
      return false;
    }
    this.#seen.add(key);
    if (this.#seen.size > this.capacity) {
      const oldest = this.#seen.values().next();
      if (!oldest.done) this.#seen.delete(oldest.value);
    }
    return true;
  }
}
