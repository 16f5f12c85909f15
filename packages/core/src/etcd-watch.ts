import { Backoff } from '@messaging-server/protocol';
import { closeStream, type EtcdConnection, type IKeyValue, type IWatchResponse, type WatchStream } from './etcd-connection.js';
import type { Logger } from './logger.js';
import type { RegistryEntry, RegistryEvent, RegistryWatch } from './registry.js';

/** Reconnects of a broken watch stream; reset once the stream is live again. */
const RETRY = { initialMs: 200, maxMs: 2000 } as const;

interface Viewed {
  raw: string;
  entry: RegistryEntry;
}

/**
 * One watch over the registry prefix, driven on its own gRPC stream (etcd3's Watcher reconnects by itself but
 * resumes from the revision of its last *create* response, which can skip events if the stream breaks again
 * before the catch-up arrives, and it reports compaction only as an opaque error).
 *
 * The listener's view is tracked here, so a compaction (or any cancel) is repaired by a full read diffed against
 * that view: the listener always holds "snapshot + events".
 */
export class EtcdWatch implements RegistryWatch {
  private readonly view = new Map<string, Viewed>();
  private lastRevision = 0;
  private stream: WatchStream | undefined;
  private createTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly retry = new Backoff(RETRY);
  private needsFullRead = false;
  private closed = false;
  private isSynced = true;

  constructor(
    private readonly connection: EtcdConnection,
    private readonly listener: (event: RegistryEvent) => void,
    private readonly logger: Logger,
    private readonly onClosed: (watch: EtcdWatch) => void,
    private readonly scope: { key: Buffer; end: Buffer } = connection.scopeOf(),
  ) {}

  get synced(): boolean {
    return this.isSynced;
  }

  /** Reads everything, emits the snapshot, then follows from the next revision. */
  async start(): Promise<void> {
    const response = await this.connection.range(this.scope.key, this.scope.end);
    const entries: RegistryEntry[] = [];
    for (const kv of response.kvs) {
      const entry = this.connection.entryOf(kv);
      if (!entry) continue;
      this.view.set(kv.key.toString(), { raw: kv.value.toString(), entry });
      entries.push(entry);
    }
    this.lastRevision = Number(response.header.revision);
    this.emit({ type: 'snapshot', entries });
    this.connect();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.teardown();
    this.onClosed(this);
  }

  private connect(): void {
    if (this.closed) return;
    this.connection
      .openWatch()
      .then((stream) => {
        if (this.closed) {
          closeStream(stream);
          return;
        }
        this.stream = stream;
        stream.on('data', (response: IWatchResponse) => this.onResponse(stream, response));
        stream.on('error', (error: Error) => this.onBroken(stream, error.message));
        stream.on('end', () => this.onBroken(stream, 'stream ended'));
        this.createTimer = setTimeout(() => this.onBroken(stream, 'watch create timed out'), this.connection.callTimeoutMs);
        stream.write({
          create_request: {
            key: this.scope.key,
            range_end: this.scope.end,
            start_revision: String(this.lastRevision + 1),
          },
        });
      })
      .catch((error: unknown) => this.scheduleRetry(error instanceof Error ? error.message : String(error)));
  }

  private onResponse(stream: WatchStream, response: IWatchResponse): void {
    if (stream !== this.stream || this.closed) return;
    if (response.created) {
      if (this.createTimer) clearTimeout(this.createTimer);
      this.createTimer = undefined;
      if (!response.canceled) {
        this.retry.reset();
        this.setSynced(true);
      }
    }
    if (response.canceled) {
      const compacted = Number(response.compact_revision) > 0;
      // Any cancel we did not ask for is repaired the same way: a full read diffed against the view.
      this.needsFullRead = true;
      this.onBroken(stream, compacted ? 'watch revision compacted' : `watch canceled: ${response.cancel_reason}`, 0);
      return;
    }
    for (const event of response.events) {
      if (this.closed) return;
      this.apply(event.type, event.kv);
    }
  }

  private apply(type: string, kv: IKeyValue): void {
    const revision = Number(kv.mod_revision);
    if (revision > this.lastRevision) this.lastRevision = revision;
    const key = kv.key.toString();
    if (type === 'Delete' || type === 'DELETE') {
      const viewed = this.view.get(key);
      if (!viewed) return;
      this.view.delete(key);
      this.emit({ type: 'delete', kind: viewed.entry.kind, id: viewed.entry.id });
      return;
    }
    const entry = this.connection.entryOf(kv);
    if (!entry) return;
    this.view.set(key, { raw: kv.value.toString(), entry });
    this.emit({ type: 'put', entry });
  }

  private onBroken(stream: WatchStream, reason: string, delayMs?: number): void {
    if (stream !== this.stream || this.closed) return;
    this.teardown();
    if (this.isSynced) this.logger.warn({ reason, revision: this.lastRevision }, 'registry watch lost its stream');
    this.setSynced(false);
    this.scheduleRetry(reason, delayMs);
  }

  private scheduleRetry(reason: string, delayMs?: number): void {
    if (this.closed) return;
    this.setSynced(false);
    const delay = delayMs ?? this.retry.next();
    this.logger.debug({ reason, delayMs: delay, fullRead: this.needsFullRead }, 'registry watch reconnecting');
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.needsFullRead) void this.resynchronise();
      else this.connect();
    }, delay);
  }

  /** Full read at revision R, put/delete for every difference with the view, then follow from R + 1. */
  private async resynchronise(): Promise<void> {
    let response;
    try {
      response = await this.connection.range(this.scope.key, this.scope.end);
    } catch (error) {
      this.scheduleRetry(error instanceof Error ? error.message : String(error));
      return;
    }
    if (this.closed) return;
    const seen = new Set<string>();
    for (const kv of response.kvs) {
      const entry = this.connection.entryOf(kv);
      if (!entry) continue;
      const key = kv.key.toString();
      seen.add(key);
      const raw = kv.value.toString();
      const viewed = this.view.get(key);
      if (viewed && viewed.raw === raw && viewed.entry.leaseId === entry.leaseId) continue;
      this.view.set(key, { raw, entry });
      this.emit({ type: 'put', entry });
    }
    for (const [key, viewed] of [...this.view]) {
      if (seen.has(key)) continue;
      this.view.delete(key);
      this.emit({ type: 'delete', kind: viewed.entry.kind, id: viewed.entry.id });
    }
    this.lastRevision = Number(response.header.revision);
    this.needsFullRead = false;
    this.logger.info({ revision: this.lastRevision }, 'registry watch resynchronised from a full read');
    this.connect();
  }

  private teardown(): void {
    if (this.createTimer) clearTimeout(this.createTimer);
    this.createTimer = undefined;
    const stream = this.stream;
    this.stream = undefined;
    if (stream) closeStream(stream);
  }

  private setSynced(synced: boolean): void {
    if (this.isSynced === synced) return;
    this.isSynced = synced;
    this.emit({ type: 'status', synced });
  }

  private emit(event: RegistryEvent): void {
    try {
      this.listener(event);
    } catch (error) {
      this.logger.error({ err: error, event: event.type }, 'registry watch listener threw');
    }
  }
}
