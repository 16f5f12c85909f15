import type { GatewayRecord, NodeRecord } from '@messaging-server/protocol';
import { BackendError } from './errors.js';
import { LeaseStore, type StoredValue } from './memory-registry/lease-store.js';
import {
  MemoryGatewayRegistration,
  MemoryNodeRegistration,
  type MemoryRegistration,
} from './memory-registry/memory-registration.js';
import { MemoryWatch } from './memory-registry/memory-watch.js';
import type {
  GatewayRegistration,
  NodeRegistration,
  Registry,
  RegistryEntry,
  RegistryEvent,
  RegistrySnapshot,
  RegistryWatch,
  WatchOptions,
} from './registry.js';
import { snapshotOf } from './registry-snapshot.js';

export interface MemoryRegistryOptions {
  /** Default 10. Unit tests use short TTLs (or fake timers) to see expiry. */
  leaseTtlSeconds?: number;
}

/** What the test control reaches inside a registry; production code has no way to it (see testing.ts). */
export interface MemoryRegistryInternals {
  readonly store: LeaseStore;
  readonly watches: ReadonlySet<MemoryWatch>;
  readonly registrations: Set<MemoryRegistration<StoredValue>>;
}

const internals = new WeakMap<MemoryRegistry, MemoryRegistryInternals>();

/** For the test control in testing.ts only. */
export function memoryRegistryInternals(registry: MemoryRegistry): MemoryRegistryInternals {
  const found = internals.get(registry);
  if (!found) throw new TypeError('not a MemoryRegistry');
  return found;
}

/**
 * The in-memory Registry: the same contract as etcd, in one process. It is the real backend of standalone mode and
 * the registry of unit tests. Leases expire on timers; registrations keep them alive every TTL/3 like etcd's client.
 * Crashes, lease loss and outages are simulated through `MemoryRegistryControl` (`@messaging-server/core/testing`).
 */
export class MemoryRegistry implements Registry {
  readonly leaseTtlSeconds: number;
  readonly #store: LeaseStore;
  readonly #watches = new Set<MemoryWatch>();
  readonly #registrations = new Set<MemoryRegistration<StoredValue>>();

  constructor(options: MemoryRegistryOptions = {}) {
    this.leaseTtlSeconds = options.leaseTtlSeconds ?? 10;
    if (!(this.leaseTtlSeconds > 0)) throw new RangeError('leaseTtlSeconds must be positive');
    this.#store = new LeaseStore(this.leaseTtlSeconds);
    internals.set(this, { store: this.#store, watches: this.#watches, registrations: this.#registrations });
  }

  async registerNode(record: NodeRecord): Promise<NodeRegistration> {
    const registration = new MemoryNodeRegistration(this.#store, 'node', record.nodeId, record, this.#forget);
    await this.register(registration);
    return registration;
  }

  async registerGateway(record: GatewayRecord): Promise<GatewayRegistration> {
    const registration = new MemoryGatewayRegistration(this.#store, 'gateway', record.gatewayId, record, this.#forget);
    await this.register(registration);
    return registration;
  }

  async list(): Promise<RegistrySnapshot & { entries: RegistryEntry[] }> {
    await Promise.resolve();
    this.#store.assertUsable();
    return snapshotOf(this.#store.entries());
  }

  async leaseTimeToLive(leaseId: string): Promise<number | undefined> {
    await Promise.resolve();
    this.#store.assertUsable();
    return this.#store.secondsLeft(leaseId);
  }

  async watch(listener: (event: RegistryEvent) => void, options: WatchOptions = {}): Promise<RegistryWatch> {
    await Promise.resolve();
    this.#store.assertUsable();
    const watch: MemoryWatch = new MemoryWatch(listener, options.kind, () => {
      this.#watches.delete(watch);
      this.#store.removeSink(watch);
    });
    this.#watches.add(watch);
    this.#store.addSink(watch);
    watch.push({ type: 'snapshot', entries: this.#store.entries().filter((e) => options.kind === undefined || e.kind === options.kind) });
    await watch.drained();
    return watch;
  }

  async close(): Promise<void> {
    for (const registration of this.#registrations) registration.stopTimers();
    this.#store.close();
    for (const watch of [...this.#watches]) await watch.close();
  }

  readonly #forget = (registration: MemoryRegistration<StoredValue>): void => {
    this.#registrations.delete(registration);
  };

  private async register(registration: MemoryRegistration<StoredValue>): Promise<void> {
    await Promise.resolve();
    this.#store.assertUsable();
    if (this.#store.holder(registration.kind, registration.id) !== undefined) {
      throw new BackendError('ALREADY_REGISTERED', `${registration.kind} ${registration.id} is already registered`);
    }
    registration.attachNewLease();
    this.#registrations.add(registration);
  }
}
