import type { StoreCredentials } from './store-credentials.js';
import { Backoff, type GatewayRecord, type LoadRecord, type NodeRecord } from '@messaging-server/protocol';
import { BackendError } from './errors.js';
import { EtcdConnection, LeaseGoneError, type IRequestOp } from './etcd-connection.js';
import { LeaseKeeper } from './etcd-lease-keeper.js';
import { EtcdWatch } from './etcd-watch.js';
import { silentLogger, type Logger } from './logger.js';
import { snapshotOf } from './registry-snapshot.js';
import type {
  GatewayRegistration,
  NodeRegistration,
  Registration,
  Registry,
  RegistryEntry,
  RegistryEvent,
  RegistryKind,
  RegistrySnapshot,
  RegistryWatch,
  WatchOptions,
} from './registry.js';
import { RegistrationListeners, type RegistrationEvent } from './registration-listeners.js';

export interface EtcdRegistryOptions {
  /** e.g. `['http://127.0.0.1:2379']`. */
  endpoints: string[];
  /** Key prefix ending in `/`, e.g. `/messaging-server/`. */
  prefix: string;
  leaseTtlSeconds: number;
  logger?: Logger;
  /** Upper bound for every single etcd call (connect included); default 2000. */
  dialTimeoutMs?: number;
  /** An etcd user (auth enabled on the server) whose role may read and write the prefix. */
  credentials?: StoreCredentials;
}

type OwnKind = 'node' | 'gateway';

const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 2000;

/**
 * Re-registration retries. After an etcd restart our old lease is back with one fresh TTL; retrying at least four
 * times per TTL takes the key over before that lease expires, so watchers see no delete/put flap.
 */
function reregisterBackoff(ttlSeconds: number): Backoff {
  return new Backoff({ initialMs: RETRY_MIN_MS, maxMs: Math.max(RETRY_MIN_MS, Math.min(RETRY_MAX_MS, (ttlSeconds * 1000) / 4)) });
}

const internals = new WeakMap<EtcdRegistry, { abandon(registration: Registration<unknown>): void }>();

/** For the test control in testing.ts only: crash tests abandon a registration as a SIGKILL would. */
export function etcdRegistryInternals(registry: EtcdRegistry): { abandon(registration: Registration<unknown>): void } {
  const found = internals.get(registry);
  if (!found) throw new TypeError('not an EtcdRegistry');
  return found;
}

/** The etcd v3 Registry (see registry.ts for the contract). */
export class EtcdRegistry implements Registry {
  private readonly connection: EtcdConnection;
  private readonly logger: Logger;
  private readonly ttlSeconds: number;
  private readonly watches = new Set<EtcdWatch>();
  private readonly registrations = new Set<{ detach(): void }>();

  constructor(options: EtcdRegistryOptions) {
    if (!Number.isInteger(options.leaseTtlSeconds) || options.leaseTtlSeconds < 1) {
      throw new RangeError('leaseTtlSeconds must be an integer >= 1');
    }
    this.logger = (options.logger ?? silentLogger).child({ component: 'registry' });
    this.ttlSeconds = options.leaseTtlSeconds;
    this.connection = new EtcdConnection(options.endpoints, options.prefix, options.dialTimeoutMs ?? 2000, this.logger, options.credentials);
    internals.set(this, {
      abandon: (registration) => {
        if (!(registration instanceof EtcdRegistration)) throw new TypeError('not a registration of this registry');
        registration.abandon();
        this.registrations.delete(registration);
      },
    });
  }

  async registerNode(record: NodeRecord): Promise<NodeRegistration> {
    return this.register(new EtcdNodeRegistration(this.connection, this.ttlSeconds, 'node', record.nodeId, record, this.logger, this.forget));
  }

  async registerGateway(record: GatewayRecord): Promise<GatewayRegistration> {
    const registration = new EtcdGatewayRegistration(this.connection, this.ttlSeconds, 'gateway', record.gatewayId, record, this.logger, this.forget);
    return this.register(registration);
  }

  private readonly forget = (registration: { detach(): void }): void => {
    this.registrations.delete(registration);
  };

  private async register<T extends EtcdRegistration<NodeRecord | GatewayRecord>>(registration: T): Promise<T> {
    await registration.registerFirst();
    this.registrations.add(registration);
    return registration;
  }

  async list(): Promise<RegistrySnapshot & { entries: RegistryEntry[] }> {
    const response = await this.connection.rangePrefix();
    const entries: RegistryEntry[] = [];
    for (const kv of response.kvs) {
      const entry = this.connection.entryOf(kv);
      if (entry) entries.push(entry);
    }
    return snapshotOf(entries);
  }

  leaseTimeToLive(leaseId: string): Promise<number | undefined> {
    return this.connection.timeToLive(leaseId);
  }

  async watch(listener: (event: RegistryEvent) => void, options: WatchOptions = {}): Promise<RegistryWatch> {
    const watch = new EtcdWatch(this.connection, listener, this.logger, (w) => this.watches.delete(w), this.connection.scopeOf(options.kind));
    await watch.start();
    this.watches.add(watch);
    return watch;
  }

  async close(): Promise<void> {
    for (const watch of [...this.watches]) await watch.close();
    for (const registration of this.registrations) registration.detach();
    this.registrations.clear();
    this.connection.close();
  }
}

/**
 * A key on a lease with keepalive; re-registers by itself after `lost` (see Registration in registry.ts).
 * Writes go through one queue so a record, its load and a re-registration never overtake each other.
 */
abstract class EtcdRegistration<R extends NodeRecord | GatewayRecord> implements Registration<R> {
  state: 'registered' | 'lost' | 'revoked' = 'registered';
  protected leaseId: string | undefined;
  private keeper: LeaseKeeper | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly retry: Backoff;
  /** Detached (registry closed or registration abandoned): nothing is scheduled any more. */
  private stopped = false;
  /** A write failed while registered; re-put everything on the next keepalive acknowledgement. */
  private dirty = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** Leases this registration granted and has not seen revoked: a key on one of them is ours to take over. */
  private readonly ownLeases = new Set<string>();
  private readonly listeners = new RegistrationListeners((event, error) => {
    this.log.error({ event, err: error }, 'registration listener threw');
  });
  private readonly log: Logger;

  constructor(
    protected readonly connection: EtcdConnection,
    private readonly ttlSeconds: number,
    readonly kind: OwnKind,
    readonly id: string,
    public record: R,
    logger: Logger,
    private readonly onGone: (registration: { detach(): void }) => void,
  ) {
    this.log = logger.child(kind === 'node' ? { nodeId: id } : { gatewayId: id });
    this.retry = reregisterBackoff(ttlSeconds);
  }

  private get key(): Buffer {
    return this.connection.keyOf(this.kind, this.id);
  }

  /** Create-only: ALREADY_REGISTERED if a live process holds the key. */
  async registerFirst(): Promise<void> {
    const sentAt = Date.now();
    const leaseId = await this.connection.grant(this.ttlSeconds);
    this.ownLeases.add(leaseId);
    try {
      const response = await this.connection.txn(
        [{ key: this.key, target: 'Create', result: 'Equal', create_revision: 0 }],
        this.puts(leaseId),
        [],
      );
      if (!response.succeeded) {
        throw new BackendError('ALREADY_REGISTERED', `${this.kind} ${this.id} is already registered`);
      }
    } catch (error) {
      this.dropLease(leaseId);
      if (error instanceof LeaseGoneError) throw new BackendError('REGISTRY_UNAVAILABLE', 'lease vanished while registering', { cause: error });
      throw error;
    }
    this.becomeRegistered(leaseId, sentAt);
    this.log.info({ leaseId }, 'registered');
  }

  update(record: R): Promise<void> {
    this.record = record;
    return this.write(() => this.puts(this.leaseId ?? '0').slice(0, 1));
  }

  on(event: RegistrationEvent, listener: () => void): this {
    this.listeners.add(event, listener);
    return this;
  }

  off(event: RegistrationEvent, listener: () => void): this {
    this.listeners.remove(event, listener);
    return this;
  }

  async revoke(): Promise<void> {
    if (this.state === 'revoked') return;
    this.state = 'revoked';
    this.detach();
    this.onGone(this);
    await this.queue.catch(() => undefined);
    const leases = [...this.ownLeases];
    const results = await Promise.allSettled(leases.map((leaseId) => this.connection.revoke(leaseId)));
    results.forEach((result, index) => {
      if (result.status === 'rejected') {
        this.log.warn({ leaseId: leases[index], err: result.reason }, 'lease revoke failed; keys expire with the lease');
      }
    });
    this.ownLeases.clear();
    this.log.info({}, 'revoked');
    this.emit('revoked');
  }

  abandon(): void {
    this.detach();
    this.state = 'revoked';
    this.ownLeases.clear();
  }

  /** Stops keepalive and retries without revoking (registry closing). */
  detach(): void {
    this.stopped = true;
    this.keeper?.stop();
    this.keeper = undefined;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** The put operations for this registration's keys on `leaseId`: the record first, then what a subclass adds. */
  private puts(leaseId: string): IRequestOp[] {
    return [{ request_put: { key: this.key, value: Buffer.from(JSON.stringify(this.record)), lease: leaseId } }, ...this.extraPuts(leaseId)];
  }

  /** Keys besides the record that this registration owns on its lease. */
  protected extraPuts(_leaseId: string): IRequestOp[] {
    return [];
  }

  protected write(ops: () => IRequestOp[]): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.state !== 'registered' || this.leaseId === undefined) return;
      const leaseId = this.leaseId;
      const operations = ops();
      if (operations.length === 0) return;
      try {
        await this.connection.txn([], operations, []);
      } catch (error) {
        if (error instanceof LeaseGoneError) {
          if (this.leaseId === leaseId) this.markLost('lease not found on write');
          return;
        }
        this.dirty = true;
        throw error;
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private becomeRegistered(leaseId: string, sentAt: number): void {
    this.leaseId = leaseId;
    this.state = 'registered';
    this.retry.reset();
    this.keeper?.stop();
    this.keeper = new LeaseKeeper(this.connection, leaseId, this.ttlSeconds, sentAt, {
      onLost: (reason) => this.markLost(reason),
      onAck: () => this.flushIfDirty(),
    });
    this.keeper.start();
  }

  private flushIfDirty(): void {
    if (!this.dirty) return;
    this.dirty = false;
    this.write(() => this.puts(this.leaseId ?? '0')).catch(() => {
      // write() set dirty again; the next acknowledgement retries
    });
  }

  private markLost(reason: string): void {
    if (this.state !== 'registered') return;
    this.state = 'lost';
    this.keeper?.stop();
    this.keeper = undefined;
    this.log.warn({ reason, leaseId: this.leaseId }, 'registry lease lost');
    this.emit('lost');
    this.scheduleRetry(0);
  }

  private scheduleRetry(delayMs: number): void {
    if (this.state !== 'lost' || this.stopped) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.queue = this.queue.then(() => this.reregister()).catch(() => undefined);
    }, delayMs);
    this.retryTimer.unref();
  }

  private backoff(): void {
    this.scheduleRetry(this.retry.next());
  }

  /**
   * A new lease; the key is created, or taken over when it still sits on one of our leases (etcd 3.4 restores
   * leases with a fresh TTL after a restart). A key on a foreign lease is left alone: we retry until it expires.
   */
  private async reregister(): Promise<void> {
    if (this.state !== 'lost') return;
    let leaseId: string | undefined;
    try {
      const sentAt = Date.now();
      leaseId = await this.connection.grant(this.ttlSeconds);
      this.ownLeases.add(leaseId);
      let response = await this.connection.txn(
        [{ key: this.key, target: 'Create', result: 'Equal', create_revision: 0 }],
        this.puts(leaseId),
        [{ request_range: { key: this.key } }],
      );
      if (!response.succeeded) {
        const holder = response.responses[0]?.response_range.kvs[0]?.lease;
        if (holder === undefined || !this.ownLeases.has(holder)) {
          this.log.warn({ holderLease: holder }, 'registry key held by another lease; retrying');
          this.dropLease(leaseId);
          this.backoff();
          return;
        }
        response = await this.connection.txn(
          [{ key: this.key, target: 'Lease', result: 'Equal', lease: holder }],
          this.puts(leaseId),
          [],
        );
        if (!response.succeeded) {
          this.dropLease(leaseId);
          this.backoff();
          return;
        }
      }
      if (this.state !== 'lost' || this.stopped) {
        // revoked or detached while we were re-registering
        this.dropLease(leaseId);
        return;
      }
      for (const old of [...this.ownLeases]) if (old !== leaseId) this.dropLease(old);
      this.dirty = false;
      this.becomeRegistered(leaseId, sentAt);
      this.log.info({ leaseId }, 'registered again');
      this.emit('registered');
    } catch (error) {
      this.log.debug({ err: error }, 're-registration failed');
      if (leaseId !== undefined) this.dropLease(leaseId);
      this.backoff();
    }
  }

  private dropLease(leaseId: string): void {
    this.ownLeases.delete(leaseId);
    this.connection.revokeQuietly(leaseId);
  }

  private emit(event: RegistrationEvent): void {
    this.listeners.emit(event);
  }
}


class EtcdNodeRegistration extends EtcdRegistration<NodeRecord> implements NodeRegistration {
  private load: LoadRecord | undefined;

  putLoad(load: LoadRecord): Promise<void> {
    this.load = load;
    return this.write(() => this.extraPuts(this.leaseId ?? '0'));
  }

  protected override extraPuts(leaseId: string): IRequestOp[] {
    if (!this.load) return [];
    return [{ request_put: { key: this.connection.keyOf('load', this.id), value: Buffer.from(JSON.stringify(this.load)), lease: leaseId } }];
  }
}

class EtcdGatewayRegistration extends EtcdRegistration<GatewayRecord> implements GatewayRegistration {}
