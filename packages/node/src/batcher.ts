/**
 * Serialises sends to one destination: at most one batch in flight; items pushed meanwhile wait and go
 * together in the next batch. One request at a time keeps per-pair order across nodes, and batching gives
 * the throughput back. `send` never throws: it settles its own items. When it returns false (the destination
 * failed), everything queued behind is handed to `abandon` at once, so callers get their errors without
 * waiting for one timeout per batch.
 */
export class Batcher<T> {
  private queue: T[] = [];
  private queuedSize = 0;
  private running = false;
  private scheduled = false;

  /**
   * `maxSize` bounds one batch, `maxQueuedSize` what may wait behind the batch in flight (a slow destination must not
   * make the queue grow without bound): beyond it, `push` refuses the item.
   */
  constructor(
    private readonly send: (batch: T[]) => Promise<boolean>,
    private readonly abandon: (items: T[]) => void,
    private readonly maxItems = 500,
    private readonly sizeOf: (item: T) => number = () => 1,
    private readonly maxSize = Number.POSITIVE_INFINITY,
    private readonly maxQueuedSize = Number.POSITIVE_INFINITY,
  ) {}

  get idle(): boolean {
    return !this.running && !this.scheduled && this.queue.length === 0;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Queues the item; false (not queued) when the queue is at maxQueuedSize. */
  push(item: T): boolean {
    const size = this.sizeOf(item);
    if (this.queue.length > 0 && this.queuedSize + size > this.maxQueuedSize) return false;
    this.queue.push(item);
    this.queuedSize += size;
    if (this.running || this.scheduled) return true;
    // One tick of grace lets frames that arrived in the same socket read join the first batch.
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.run();
    });
    return true;
  }

  /** Removes everything still queued (not the batch in flight) and returns it. */
  takeAll(): T[] {
    this.queuedSize = 0;
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
        if (!ok && this.queue.length > 0) this.abandon(this.takeAll());
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
    this.queuedSize -= size;
    return this.queue.splice(0, count);
  }
}
