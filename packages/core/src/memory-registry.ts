import type { GatewayRecord, LoadRecord, NodeRecord } from '@messaging-server/protocol';
import { BackendError } from './errors.js';
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
} from './registry.js';
import { RegistrationListeners, type RegistrationEvent } from './registration-listeners.js';

export interface MemoryRegistryOptions {
  /** Default 10. Unit tests use short TTLs (or fake timers) to see expiry. */
  leaseTtlSeconds?: number;
}

type StoredValue = NodeRecord | LoadRecord | GatewayRecord;

interface Stored {
  kind: RegistryKind;
  id: string;
  json: string;
  leaseId: string;
}

interface Lease {
  id: string;
  expiresAt: number;
  timer: NodeJS.Timeout | undefined;
}

const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 2000;
const LOST_GAP_MS = 50;

function keyOf(kind: RegistryKind, id: string): string {
  return `${kind}/${id}`;
}

function toEntry(stored: Stored): RegistryEntry {
  return { kind: stored.kind, id: stored.id, value: JSON.parse(stored.json), leaseId: stored.leaseId } as RegistryEntry;
}

function unavailable(): BackendError {
  return new BackendError('REGISTRY_UNAVAILABLE', 'memory registry is unavailable (simulated outage)');
}

/**
 * The in-memory Registry: the same contract as etcd, in one process (standalone mode and unit tests).
 *
 * Leases expire on timers; registrations keep them alive every TTL/3 like etcd's client. Test hooks:
 * - `crash(id)` stops a registration's keepalive without revoking, as a SIGKILL would: its keys vanish one TTL later.
 * - `simulateLeaseLoss(id)` expires its lease now: the registration emits `lost`, then re-registers by itself.
 * - `setAvailable(false)` simulates an unreachable etcd: calls reject with REGISTRY_UNAVAILABLE, watches report
 *   `status synced:false` and buffer events, leases stop counting down; registrations go `lost` once their TTL
 *   passes without keepalive. `setAvailable(true)` gives every lease a fresh TTL (as etcd 3.4 does on restart),
 *   flushes the watches and lets lost registrations re-register.
 * Events reach listeners asynchronously (a microtask later) and in order, as they would from etcd.
 */
export class MemoryRegistry implements Registry {
  readonly leaseTtlSeconds: number;
  private readonly store = new Map<string, Stored>();
  private readonly leases = new Map<string, Lease>();
  private readonly watches = new Set<MemoryWatch>();
  private readonly registrations = new Set<MemoryRegistrationImpl<StoredValue>>();
  private nextLease = 1;
  private available = true;
  private closed = false;

  constructor(options: MemoryRegistryOptions = {}) {
    this.leaseTtlSeconds = options.leaseTtlSeconds ?? 10;
    if (!(this.leaseTtlSeconds > 0)) throw new RangeError('leaseTtlSeconds must be positive');
  }

  get isAvailable(): boolean {
    return this.available;
  }

  async registerNode(record: NodeRecord): Promise<NodeRegistration> {
    const registration = new MemoryRegistrationImpl<NodeRecord>(this, 'node', record.nodeId, record);
    await this.register(registration as unknown as MemoryRegistrationImpl<StoredValue>);
    return registration as unknown as NodeRegistration;
  }

  async registerGateway(record: GatewayRecord): Promise<GatewayRegistration> {
    const registration = new MemoryRegistrationImpl<GatewayRecord>(this, 'gateway', record.gatewayId, record);
    await this.register(registration as unknown as MemoryRegistrationImpl<StoredValue>);
    return registration;
  }

  private async register(registration: MemoryRegistrationImpl<StoredValue>): Promise<void> {
    await Promise.resolve();
    this.assertUsable();
    if (this.store.has(keyOf(registration.kind, registration.id))) {
      throw new BackendError('ALREADY_REGISTERED', `${registration.kind} ${registration.id} is already registered`);
    }
    const lease = this.grant();
    this.write(registration.kind, registration.id, registration.record, lease.id);
    registration.attach(lease.id);
    this.registrations.add(registration);
  }

  async list(): Promise<RegistrySnapshot & { entries: RegistryEntry[] }> {
    await Promise.resolve();
    this.assertUsable();
    return snapshotOf([...this.store.values()].map(toEntry));
  }

  async leaseTimeToLive(leaseId: string): Promise<number | undefined> {
    await Promise.resolve();
    this.assertUsable();
    const lease = this.leases.get(leaseId);
    if (!lease) return undefined;
    return Math.max(0, Math.ceil((lease.expiresAt - Date.now()) / 1000));
  }

  async watch(listener: (event: RegistryEvent) => void): Promise<RegistryWatch> {
    await Promise.resolve();
    this.assertUsable();
    const watch = new MemoryWatch(listener, () => this.watches.delete(watch));
    this.watches.add(watch);
    watch.push({ type: 'snapshot', entries: [...this.store.values()].map(toEntry) });
    await watch.drained();
    return watch;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const registration of this.registrations) registration.stopTimers();
    for (const lease of this.leases.values()) if (lease.timer) clearTimeout(lease.timer);
    for (const watch of this.watches) await watch.close();
  }

  /**
   * Stops the registration's keepalive without revoking (a SIGKILLed owner). Its keys expire one TTL later.
   * Takes the registration, or a node id (with `kind` for a gateway id).
   */
  crash(target: Registration<unknown> | string, kind: 'node' | 'gateway' = 'node'): void {
    const registration =
      typeof target === 'string' ? this.findRegistration(kind, target) : this.findRegistration(asImpl(target).kind, target.id);
    registration.crash();
    this.registrations.delete(registration);
  }

  /** Expires the registration's lease now (keys deleted); the registration emits `lost`, then re-registers. */
  simulateLeaseLoss(target: Registration<unknown> | string, kind: 'node' | 'gateway' = 'node'): void {
    const registration =
      typeof target === 'string' ? this.findRegistration(kind, target) : this.findRegistration(asImpl(target).kind, target.id);
    const leaseId = registration.leaseId;
    if (leaseId !== undefined) this.expire(leaseId);
    registration.markLost();
  }

  /** Simulates etcd going away (false) and coming back (true). */
  setAvailable(available: boolean): void {
    if (this.available === available) return;
    this.available = available;
    if (!available) {
      for (const lease of this.leases.values()) {
        if (lease.timer) clearTimeout(lease.timer);
        lease.timer = undefined;
      }
      for (const watch of this.watches) watch.setSynced(false);
      return;
    }
    for (const lease of this.leases.values()) this.armLease(lease);
    for (const watch of this.watches) watch.setSynced(true);
    for (const registration of this.registrations) registration.onBackendBack();
  }

  // ---- internals used by registrations ----

  assertUsable(): void {
    if (this.closed) throw new BackendError('REGISTRY_UNAVAILABLE', 'memory registry is closed');
    if (!this.available) throw unavailable();
  }

  grant(): Lease {
    const lease: Lease = { id: String(this.nextLease++), expiresAt: 0, timer: undefined };
    this.leases.set(lease.id, lease);
    this.armLease(lease);
    return lease;
  }

  keepAlive(leaseId: string): boolean {
    const lease = this.leases.get(leaseId);
    if (!lease) return false;
    this.armLease(lease);
    return true;
  }

  revokeLease(leaseId: string): void {
    this.expire(leaseId);
  }

  holder(kind: RegistryKind, id: string): string | undefined {
    return this.store.get(keyOf(kind, id))?.leaseId;
  }

  leaseExists(leaseId: string): boolean {
    return this.leases.has(leaseId);
  }

  write(kind: RegistryKind, id: string, value: StoredValue, leaseId: string): void {
    const stored: Stored = { kind, id, json: JSON.stringify(value), leaseId };
    this.store.set(keyOf(kind, id), stored);
    const entry = toEntry(stored);
    for (const watch of this.watches) watch.push({ type: 'put', entry });
  }

  private armLease(lease: Lease): void {
    if (lease.timer) clearTimeout(lease.timer);
    const ttlMs = this.leaseTtlSeconds * 1000;
    lease.expiresAt = Date.now() + ttlMs;
    lease.timer = setTimeout(() => this.expire(lease.id), ttlMs);
    lease.timer.unref();
  }

  private expire(leaseId: string): void {
    const lease = this.leases.get(leaseId);
    if (!lease) return;
    if (lease.timer) clearTimeout(lease.timer);
    this.leases.delete(leaseId);
    for (const [key, stored] of this.store) {
      if (stored.leaseId !== leaseId) continue;
      this.store.delete(key);
      for (const watch of this.watches) watch.push({ type: 'delete', kind: stored.kind, id: stored.id });
    }
  }

  private findRegistration(kind: 'node' | 'gateway', id: string): MemoryRegistrationImpl<StoredValue> {
    for (const registration of this.registrations) {
      if (registration.kind === kind && registration.id === id && registration.state !== 'revoked') return registration;
    }
    throw new Error(`no live ${kind} registration ${id}`);
  }

  forget(registration: MemoryRegistrationImpl<StoredValue>): void {
    this.registrations.delete(registration);
  }
}

function asImpl(registration: Registration<unknown>): MemoryRegistrationImpl<StoredValue> {
  if (!(registration instanceof MemoryRegistrationImpl)) throw new TypeError('not a memory registration');
  return registration as MemoryRegistrationImpl<StoredValue>;
}

class MemoryRegistrationImpl<R extends StoredValue> implements Registration<R> {
  state: 'registered' | 'lost' | 'revoked' = 'registered';
  leaseId: string | undefined;
  private load: LoadRecord | undefined;
  private readonly listeners = new RegistrationListeners();
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = RETRY_MIN_MS;
  private lastAck = Date.now();
  /** A write failed during an outage; written again when the backend is back (as etcd's keepalive ack does). */
  private dirty = false;

  constructor(
    private readonly registry: MemoryRegistry,
    readonly kind: 'node' | 'gateway',
    readonly id: string,
    public record: R,
  ) {}

  attach(leaseId: string): void {
    this.leaseId = leaseId;
    this.lastAck = Date.now();
    this.startKeepalive();
  }

  async update(record: R): Promise<void> {
    this.record = record;
    await this.writeOwn(this.kind, record);
  }

  async putLoad(load: LoadRecord): Promise<void> {
    if (this.kind !== 'node') throw new Error('putLoad is for node registrations');
    this.load = load;
    await this.writeOwn('load', load);
  }

  private async writeOwn(kind: RegistryKind, value: StoredValue): Promise<void> {
    await Promise.resolve();
    if (this.state !== 'registered' || this.leaseId === undefined) return;
    if (!this.registry.isAvailable) this.dirty = true;
    this.registry.assertUsable();
    if (!this.registry.leaseExists(this.leaseId)) {
      this.markLost();
      return;
    }
    this.registry.write(kind, this.id, value, this.leaseId);
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
    this.stopTimers();
    this.registry.forget(this as unknown as MemoryRegistrationImpl<StoredValue>);
    if (this.leaseId !== undefined) this.registry.revokeLease(this.leaseId);
    this.emit('revoked');
  }

  stopTimers(): void {
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.keepaliveTimer = undefined;
    this.retryTimer = undefined;
  }

  crash(): void {
    this.stopTimers();
    this.state = 'revoked';
  }

  markLost(): void {
    if (this.state !== 'registered') return;
    this.state = 'lost';
    this.stopTimers();
    this.emit('lost');
    this.retryDelayMs = RETRY_MIN_MS;
    // A short gap, as etcd's round trips would leave, so owners can observe the `lost` state.
    this.scheduleRetry(LOST_GAP_MS);
  }

  onBackendBack(): void {
    if (this.state === 'registered') {
      this.lastAck = Date.now();
      if (this.dirty && this.leaseId !== undefined) {
        this.dirty = false;
        this.registry.write(this.kind, this.id, this.record, this.leaseId);
        if (this.load && this.kind === 'node') this.registry.write('load', this.id, this.load, this.leaseId);
      }
    }
    if (this.state === 'lost') this.scheduleRetry(0);
  }

  private startKeepalive(): void {
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    const ttlMs = this.registry.leaseTtlSeconds * 1000;
    this.keepaliveTimer = setInterval(() => this.keepaliveTick(ttlMs), Math.max(10, ttlMs / 3));
    this.keepaliveTimer.unref();
  }

  private keepaliveTick(ttlMs: number): void {
    if (this.state !== 'registered' || this.leaseId === undefined) return;
    if (!this.registry.isAvailable) {
      if (Date.now() - this.lastAck > ttlMs) this.markLost();
      return;
    }
    if (this.registry.keepAlive(this.leaseId)) this.lastAck = Date.now();
    else this.markLost();
  }

  private scheduleRetry(delayMs: number): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.tryReregister(), delayMs);
    this.retryTimer.unref();
  }

  private tryReregister(): void {
    this.retryTimer = undefined;
    if (this.state !== 'lost') return;
    const retry = (): void => {
      const delay = this.retryDelayMs;
      this.retryDelayMs = Math.min(RETRY_MAX_MS, this.retryDelayMs * 2);
      this.scheduleRetry(delay);
    };
    if (!this.registry.isAvailable) return retry();
    const holder = this.registry.holder(this.kind, this.id);
    if (holder !== undefined && holder !== this.leaseId) return retry();
    const oldLease = this.leaseId;
    const lease = this.registry.grant();
    this.registry.write(this.kind, this.id, this.record, lease.id);
    if (this.load && this.kind === 'node') this.registry.write('load', this.id, this.load, lease.id);
    if (oldLease !== undefined && oldLease !== lease.id) this.registry.revokeLease(oldLease);
    this.state = 'registered';
    this.dirty = false;
    this.attach(lease.id);
    this.emit('registered');
  }

  private emit(event: RegistrationEvent): void {
    this.listeners.emit(event);
  }
}

class MemoryWatch implements RegistryWatch {
  synced = true;
  private readonly queue: RegistryEvent[] = [];
  private readonly buffered: RegistryEvent[] = [];
  private scheduled = false;
  private closed = false;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly listener: (event: RegistryEvent) => void,
    private readonly onClose: () => void,
  ) {}

  push(event: RegistryEvent): void {
    if (this.closed) return;
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

  drained(): Promise<void> {
    if (!this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private flush(): void {
    this.scheduled = false;
    for (const event of this.queue.splice(0)) {
      if (this.closed) break;
      this.listener(event);
    }
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.onClose();
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

export function snapshotOf(entries: RegistryEntry[]): RegistrySnapshot & { entries: RegistryEntry[] } {
  const snapshot: RegistrySnapshot & { entries: RegistryEntry[] } = {
    nodes: new Map(),
    loads: new Map(),
    gateways: new Map(),
    entries,
  };
  for (const entry of entries) {
    if (entry.kind === 'node') snapshot.nodes.set(entry.id, entry.value);
    else if (entry.kind === 'load') snapshot.loads.set(entry.id, entry.value);
    else snapshot.gateways.set(entry.id, entry.value);
  }
  return snapshot;
}
