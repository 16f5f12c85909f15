import type { RegistryEvent, RegistryKind, RegistryWatch } from '../registry.js';
import type { ChangeSink } from './lease-store.js';

/**
 * A watch on the memory registry. Events reach the listener a microtask later and in order, as they would from
 * etcd; while the store is "unreachable" they are buffered behind a `status synced:false`, and delivered with
 * `status synced:true` when it is back.
 */
export class MemoryWatch implements RegistryWatch, ChangeSink {
  synced = true;
  private readonly queue: RegistryEvent[] = [];
  private readonly buffered: RegistryEvent[] = [];
  private scheduled = false;
  private closed = false;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly listener: (event: RegistryEvent) => void,
    /** Only entries of this kind (undefined: all). */
    private readonly kind: RegistryKind | undefined,
    private readonly onClose: () => void,
  ) {}

  push(event: RegistryEvent): void {
    if (this.closed || !this.wants(event)) return;
    if (!this.synced && event.type !== 'status') {
      this.buffered.push(event);
      return;
    }
    this.queue.push(event);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private wants(event: RegistryEvent): boolean {
    if (this.kind === undefined) return true;
    if (event.type === 'put') return event.entry.kind === this.kind;
    if (event.type === 'delete') return event.kind === this.kind;
    return true;
  }

  setSynced(synced: boolean): void {
    if (this.synced === synced) return;
    if (synced) {
      this.synced = true;
      for (const event of this.buffered.splice(0)) this.push(event);
      this.push({ type: 'status', synced: true });
    } else {
      this.push({ type: 'status', synced: false });
      this.synced = false;
    }
  }

  /** Resolves once every event pushed so far reached the listener. */
  drained(): Promise<void> {
    if (!this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.onClose();
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  private flush(): void {
    this.scheduled = false;
    for (const event of this.queue.splice(0)) {
      if (this.closed) break;
      this.listener(event);
    }
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}
