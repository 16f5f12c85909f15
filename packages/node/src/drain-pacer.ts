export interface PacedCloseOptions<C> {
  /** The connections still open now; asked again whenever the first list is worked off (late handshakes). */
  open(): Iterable<C>;
  isOpen(connection: C): boolean;
  /** False while the connection should wait (its own messages are still on their way); asked again on later ticks. */
  ready(connection: C, elapsedMs: number): boolean;
  close(connection: C): void;
  ratePerSecond: number;
  /** Epoch ms: pacing stops here, whoever is left is the caller's to close. */
  deadline: number;
  /** True when nothing is left to wait for, or the node was stopped hard. */
  done(): boolean;
  /** For tests: the pause between ticks (default 5–20 ms, jittered). */
  pause?: () => Promise<void>;
}

const jitteredPause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 15));

/**
 * Closes connections at `ratePerSecond`, in random order, on a jittered tick, starting at once, so the clients'
 * reconnects reach the gateways spread out instead of as one stampede. Resolves when `done()` or at the deadline.
 */
export async function closePaced<C>(options: PacedCloseOptions<C>): Promise<void> {
  const pause = options.pause ?? jitteredPause;
  const startedAt = Date.now();
  const order = shuffled([...options.open()]);
  const capacity = Math.max(1, options.ratePerSecond);
  let budget = 1;
  let last = startedAt;
  while (Date.now() < options.deadline) {
    const now = Date.now();
    budget = Math.min(budget + ((now - last) / 1000) * options.ratePerSecond, capacity);
    last = now;
    const deferred: C[] = [];
    while (budget >= 1 && order.length > 0) {
      const connection = order.pop() as C;
      if (!options.isOpen(connection)) continue;
      if (!options.ready(connection, now - startedAt)) {
        deferred.push(connection);
        continue;
      }
      options.close(connection);
      budget -= 1;
    }
    order.unshift(...deferred);
    if (order.length === 0) for (const connection of options.open()) if (options.isOpen(connection)) order.push(connection);
    if (options.done()) return;
    await pause();
  }
}

function shuffled<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
