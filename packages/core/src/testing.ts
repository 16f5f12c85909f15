/**
 * Test hooks of the in-memory and etcd registries, reached only through `@messaging-server/core/testing`
 * (testkit re-exports them). Production code imports `@messaging-server/core`, which has none of this.
 */
import type { Registration } from './registry.js';
import { MemoryRegistry, memoryRegistryInternals } from './memory-registry.js';
import type { StoredValue } from './memory-registry/lease-store.js';
import type { MemoryRegistration } from './memory-registry/memory-registration.js';
import { EtcdRegistry, etcdRegistryInternals } from './etcd-registry.js';

/** Simulated failures of a MemoryRegistry. */
export interface MemoryRegistryControl {
  /**
   * Stops a registration's keepalive without revoking (a SIGKILLed owner): its keys vanish one TTL later. Takes the
   * registration, or an id (a node id, or a gateway id with kind 'gateway').
   */
  crash(target: Registration<unknown> | string, kind?: 'node' | 'gateway'): void;
  /** Expires the registration's lease now (keys deleted); it emits `lost`, then re-registers by itself. */
  simulateLeaseLoss(target: Registration<unknown> | string, kind?: 'node' | 'gateway'): void;
  /**
   * false: an unreachable etcd. Calls reject with REGISTRY_UNAVAILABLE, watches report `status synced:false` and
   * buffer events, leases stop counting down, registrations go `lost` once their TTL passes without keepalive.
   * true: every lease gets a fresh TTL (as etcd 3.4 does on restart), watches flush, lost registrations re-register.
   */
  setAvailable(available: boolean): void;
}

export function memoryRegistryControl(registry: MemoryRegistry): MemoryRegistryControl {
  const { store, watches, registrations } = memoryRegistryInternals(registry);
  const find = (target: Registration<unknown> | string, kind: 'node' | 'gateway'): MemoryRegistration<StoredValue> => {
    for (const registration of registrations) {
      const matches = typeof target === 'string' ? registration.kind === kind && registration.id === target : registration === target;
      if (matches && registration.state !== 'revoked') return registration;
    }
    throw new Error(`no live ${kind} registration ${typeof target === 'string' ? target : target.id}`);
  };
  return {
    crash(target, kind = 'node') {
      const registration = find(target, kind);
      registration.crash();
      registrations.delete(registration);
    },
    simulateLeaseLoss(target, kind = 'node') {
      const registration = find(target, kind);
      if (registration.leaseId !== undefined) store.expire(registration.leaseId);
      registration.markLost();
    },
    setAvailable(available) {
      if (store.available === available) return;
      store.setAvailable(available);
      for (const watch of watches) watch.setSynced(available);
      if (available) for (const registration of registrations) registration.onStoreBack();
    },
  };
}

/**
 * Stops keeping `registration` alive without revoking it, as if its process had died: its keys stay until the lease
 * expires (one TTL). A process that shuts down calls `revoke()` instead.
 */
export function abandonRegistration(registry: EtcdRegistry, registration: Registration<unknown>): void {
  etcdRegistryInternals(registry).abandon(registration);
}

export { MemoryRegistry, EtcdRegistry };
