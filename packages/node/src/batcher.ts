/**
 * Serialises sends to one destination: at most one batch in flight; items pushed meanwhile wait and go
 * together in the next batch. One request at a time keeps per-pair order across nodes, and batching gives
 * the throughput back. `send` never throws: it settles its own items. When it returns false (the destination
 * failed), everything queued behind is handed to `abandon` at once, so callers get their errors without
 * waiting for one timeout per batch.
 */
export class Batcher<T> {
  private queue: T[] = [];
  private running = false;
  private scheduled = false;

  constructor(
    private readonly send: (batch: T[]) => Promise<boolean>,
    private readonly abandon: (items: T[]) => void,
    private readonly maxItems = 500,
    private readonly sizeOf: (item: T) => number = () => 1,
    private readonly maxSize = Number.POSITIVE_INFINITY,
  ) {}

  get idle(): boolean {
    return !this.running && !this.scheduled && this.queue.length === 0;
  }

  get queued(): number {
    return this.queue.length;
  }

  push(item: T): void {
    this.queue.push(item);
    if (this.running || this.scheduled) return;
    // One tick of grace lets frames that arrived in the same socket read join the first batch.
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  /** Removes everything still queued (not the batch in flight) and returns it. */
  takeAll(): T[] {
    return this.queue.splice(0);
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.nextBatch();
        let ok = false;
        try {
          ok = await this.send(batch);
        } catch {
          ok = false;
        }
        if (!ok && this.queue.length > 0) this.abandon(this.queue.splice(0));
      }
    } finally {
      this.running = false;
    }
  }

  private nextBatch(): T[] {
    let count = 0;
    let size = 0;
    while (count < this.queue.length && count < this.maxItems) {
      const itemSize = this.sizeOf(this.queue[count] as T);
      if (count > 0 && size + itemSize > this.maxSize) break;
      size += itemSize;
      count += 1;
    }
    return this.queue.splice(0, count);
  }
}
