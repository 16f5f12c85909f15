import { Backoff, type GatewayRecord, type LoadRecord, type NodeRecord } from '@messaging-server/protocol';
import type { GatewayRegistration, NodeRegistration, Registration } from '../registry.js';
import { RegistrationListeners, type RegistrationEvent } from '../registration-listeners.js';
import type { LeaseStore, StoredValue } from './lease-store.js';

/** Re-registration retries while the store is away or another lease holds the key. */
const RETRY = { initialMs: 200, maxMs: 2000 } as const;
/** A short gap before re-registering, as etcd's round trips would leave, so owners can observe the `lost` state. */
const LOST_GAP_MS = 50;

/**
 * A key on a lease of the memory registry, kept alive every TTL/3 like etcd's client, re-registering by itself after
 * `lost` (see Registration in registry.ts). Subclasses name the keys they own.
 */
export abstract class MemoryRegistration<R extends StoredValue> implements Registration<R> {
  state: 'registered' | 'lost' | 'revoked' = 'registered';
  leaseId: string | undefined;
  private readonly listeners = new RegistrationListeners();
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly retry = new Backoff(RETRY);
  private lastAck = Date.now();
  /** A write failed during an outage; written again when the store is back (as etcd's keepalive ack does). */
  private dirty = false;

  constructor(
    protected readonly store: LeaseStore,
    readonly kind: 'node' | 'gateway',
    readonly id: string,
    public record: R,
    private readonly onGone: (registration: MemoryRegistration<StoredValue>) => void,
  ) {}

  /** First registration: ALREADY_REGISTERED is the caller's check; this grants the lease and writes the keys. */
  attachNewLease(): void {
    const leaseId = this.store.grant();
    this.writeAll(leaseId);
    this.attach(leaseId);
  }

  async update(record: R): Promise<void> {
    this.record = record;
    await this.writeOwn(this.kind, record);
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
    this.onGone(this);
    if (this.leaseId !== undefined) this.store.expire(this.leaseId);
    this.listeners.emit('revoked');
  }

  stopTimers(): void {
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.keepaliveTimer = undefined;
    this.retryTimer = undefined;
  }

  /** The owner died without revoking: keepalive stops, the keys expire with the lease. */
  crash(): void {
    this.stopTimers();
    this.state = 'revoked';
  }

  markLost(): void {
    if (this.state !== 'registered') return;
    this.state = 'lost';
    this.stopTimers();
    this.listeners.emit('lost');
    this.retry.reset();
    this.scheduleRetry(LOST_GAP_MS);
  }

  /** The store is reachable again: flush what an outage kept from being written, or re-register. */
  onStoreBack(): void {
    if (this.state === 'registered') {
      this.lastAck = Date.now();
      if (this.dirty && this.leaseId !== undefined) {
        this.dirty = false;
        this.writeAll(this.leaseId);
      }
    }
    if (this.state === 'lost') this.scheduleRetry(0);
  }

  /** Writes every key this registration owns on `leaseId`. */
  protected writeAll(leaseId: string): void {
    this.store.write(this.kind, this.id, this.record, leaseId);
  }

  protected async writeOwn(kind: 'node' | 'gateway' | 'load', value: StoredValue): Promise<void> {
    await Promise.resolve();
    if (this.state !== 'registered' || this.leaseId === undefined) return;
    if (!this.store.available) this.dirty = true;
    this.store.assertUsable();
    if (!this.store.leaseExists(this.leaseId)) {
      this.markLost();
      return;
    }
    this.store.write(kind, this.id, value, this.leaseId);
  }

  private attach(leaseId: string): void {
    this.leaseId = leaseId;
    this.lastAck = Date.now();
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    const ttlMs = this.store.leaseTtlSeconds * 1000;
    this.keepaliveTimer = setInterval(() => this.keepaliveTick(ttlMs), Math.max(10, ttlMs / 3));
    this.keepaliveTimer.unref();
  }

  private keepaliveTick(ttlMs: number): void {
    if (this.state !== 'registered' || this.leaseId === undefined) return;
    if (!this.store.available) {
      if (Date.now() - this.lastAck > ttlMs) this.markLost();
      return;
    }
    if (this.store.keepAlive(this.leaseId)) this.lastAck = Date.now();
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
    const holder = this.store.available ? this.store.holder(this.kind, this.id) : undefined;
    if (!this.store.available || (holder !== undefined && holder !== this.leaseId)) {
      this.scheduleRetry(this.retry.next());
      return;
    }
    const oldLease = this.leaseId;
    const leaseId = this.store.grant();
    this.writeAll(leaseId);
    if (oldLease !== undefined && oldLease !== leaseId) this.store.expire(oldLease);
    this.state = 'registered';
    this.dirty = false;
    this.attach(leaseId);
    this.listeners.emit('registered');
  }
}

export class MemoryNodeRegistration extends MemoryRegistration<NodeRecord> implements NodeRegistration {
  private load: LoadRecord | undefined;

  async putLoad(load: LoadRecord): Promise<void> {
    this.load = load;
    await this.writeOwn('load', load);
  }

  protected override writeAll(leaseId: string): void {
    super.writeAll(leaseId);
    if (this.load) this.store.write('load', this.id, this.load, leaseId);
  }
}

export class MemoryGatewayRegistration extends MemoryRegistration<GatewayRecord> implements GatewayRegistration {}

export type AnyMemoryRegistration = MemoryNodeRegistration | MemoryGatewayRegistration;
