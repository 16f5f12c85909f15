/**
 * The userIds this gateway allocated a session for lately, bounded (oldest forgotten first). Only a hint for the
 * replace policy's choice of first store call: a user seen here probably still has a record (a reconnect, a storm
 * after a node crash), so the gateway reads it first; a user not seen here probably has none, so the gateway tries
 * an atomic `add` and, when that wins, needs no read at all. A wrong hint costs one call, never correctness.
 */
export class RecentUsers {
  private readonly seen = new Set<string>();

  constructor(private readonly capacity: number) {}

  has(userId: string): boolean {
    return this.seen.has(userId);
  }

  add(userId: string): void {
    // Re-inserting moves it to the end of the Set's insertion order: the oldest is always first.
    this.seen.delete(userId);
    this.seen.add(userId);
    if (this.seen.size > this.capacity) {
      const oldest = this.seen.values().next();
      if (!oldest.done) this.seen.delete(oldest.value);
    }
  }
}
