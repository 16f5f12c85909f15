import type { GatewayRecord, LoadRecord, NodeRecord } from '@messaging-server/protocol';
import { BackendError } from '../errors.js';
import type { RegistryEntry, RegistryEvent, RegistryKind } from '../registry.js';

export type StoredValue = NodeRecord | LoadRecord | GatewayRecord;

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

/** Where a lease store's changes go: the watches of its registry. */
export interface ChangeSink {
  push(event: RegistryEvent): void;
}

function keyOf(kind: RegistryKind, id: string): string {
  return `${kind}/${id}`;
}

function toEntry(stored: Stored): RegistryEntry {
  return { kind: stored.kind, id: stored.id, value: JSON.parse(stored.json), leaseId: stored.leaseId } as RegistryEntry;
}

/**
 * The keys and leases behind a MemoryRegistry, as etcd keeps them: every key on a lease, a lease that is not kept
 * alive expires with its keys. Availability is a switch here so that tests can take the "etcd" away; only the
 * registry's test control flips it.
 */
export class LeaseStore {
  readonly #store = new Map<string, Stored>();
  readonly #leases = new Map<string, Lease>();
  readonly #sinks = new Set<ChangeSink>();
  #nextLease = 1;
  #available = true;
  #closed = false;

  constructor(readonly leaseTtlSeconds: number) {}

  get available(): boolean {
    return this.#available;
  }

  entries(): RegistryEntry[] {
    return [...this.#store.values()].map(toEntry);
  }

  addSink(sink: ChangeSink): void {
    this.#sinks.add(sink);
  }

  removeSink(sink: ChangeSink): void {
    this.#sinks.delete(sink);
  }

  assertUsable(): void {
    if (this.#closed) throw new BackendError('REGISTRY_UNAVAILABLE', 'memory registry is closed');
    if (!this.#available) throw new BackendError('REGISTRY_UNAVAILABLE', 'memory registry is unavailable (simulated outage)');
  }

  grant(): string {
    const lease: Lease = { id: String(this.#nextLease++), expiresAt: 0, timer: undefined };
    this.#leases.set(lease.id, lease);
    this.arm(lease);
    return lease.id;
  }

  keepAlive(leaseId: string): boolean {
    const lease = this.#leases.get(leaseId);
    if (!lease) return false;
    this.arm(lease);
    return true;
  }

  leaseExists(leaseId: string): boolean {
    return this.#leases.has(leaseId);
  }

  secondsLeft(leaseId: string): number | undefined {
    const lease = this.#leases.get(leaseId);
    return lease === undefined ? undefined : Math.max(0, Math.ceil((lease.expiresAt - Date.now()) / 1000));
  }

  holder(kind: RegistryKind, id: string): string | undefined {
    return this.#store.get(keyOf(kind, id))?.leaseId;
  }

  write(kind: RegistryKind, id: string, value: StoredValue, leaseId: string): void {
    const stored: Stored = { kind, id, json: JSON.stringify(value), leaseId };
    this.#store.set(keyOf(kind, id), stored);
    const entry = toEntry(stored);
    for (const sink of this.#sinks) sink.push({ type: 'put', entry });
  }

  /** Deletes the lease and every key on it; watchers see the deletes at once. */
  expire(leaseId: string): void {
    const lease = this.#leases.get(leaseId);
    if (!lease) return;
    if (lease.timer) clearTimeout(lease.timer);
    this.#leases.delete(leaseId);
    for (const [key, stored] of this.#store) {
      if (stored.leaseId !== leaseId) continue;
      this.#store.delete(key);
      for (const sink of this.#sinks) sink.push({ type: 'delete', kind: stored.kind, id: stored.id });
    }
  }

  /** An outage freezes every lease (no keepalive can reach it); the return gives each a fresh TTL, as etcd 3.4 does. */
  setAvailable(available: boolean): void {
    this.#available = available;
    for (const lease of this.#leases.values()) {
      if (available) this.arm(lease);
      else if (lease.timer) {
        clearTimeout(lease.timer);
        lease.timer = undefined;
      }
    }
  }

  close(): void {
    this.#closed = true;
    for (const lease of this.#leases.values()) if (lease.timer) clearTimeout(lease.timer);
  }

  private arm(lease: Lease): void {
    if (lease.timer) clearTimeout(lease.timer);
    const ttlMs = this.leaseTtlSeconds * 1000;
    lease.expiresAt = Date.now() + ttlMs;
    lease.timer = setTimeout(() => this.expire(lease.id), ttlMs);
    lease.timer.unref();
  }
}
