import type { GatewayRecord, LoadRecord, NodeRecord } from '@messaging-server/protocol';

/**
 * The registry of live processes (etcd in production, memory in standalone mode and unit tests).
 *
 * Layout under the prefix (default `/messaging-server/`): `nodes/<nodeId>`, `load/<nodeId>`,
 * `gateways/<gatewayId>`; JSON values; every key on its owner's lease, so a crashed owner disappears within one
 * lease TTL.
 */
export type RegistryKind = 'node' | 'load' | 'gateway';

export type RegistryEntry =
  | { kind: 'node'; id: string; value: NodeRecord; leaseId?: string }
  | { kind: 'load'; id: string; value: LoadRecord; leaseId?: string }
  | { kind: 'gateway'; id: string; value: GatewayRecord; leaseId?: string };

export interface RegistrySnapshot {
  nodes: Map<string, NodeRecord>;
  loads: Map<string, LoadRecord>;
  gateways: Map<string, GatewayRecord>;
}

export type RegistryEvent =
  /** Always the first event: the full state. Never sent again on the same watch. */
  | { type: 'snapshot'; entries: RegistryEntry[] }
  | { type: 'put'; entry: RegistryEntry }
  | { type: 'delete'; kind: RegistryKind; id: string }
  /**
   * `synced: false` when the watch lost its stream (etcd unreachable); `synced: true` once it is live again
   * and has caught up. Consumers keep using their last view in between (the contract's "last known membership").
   */
  | { type: 'status'; synced: boolean };

export interface WatchOptions {
  /**
   * Follow only entries of this kind (the default: all). The backend filters at the source (etcd watches only that
   * key range), so a node that needs membership alone is not sent every load report of the cluster.
   */
  kind?: RegistryKind;
}

export interface RegistryWatch {
  /** True while the watch is live and caught up. */
  readonly synced: boolean;
  close(): Promise<void>;
}

/**
 * A process's own entry, held on a lease with keepalive. Lifetime as in etcd's concurrency.Session:
 * registered → (lost → registered)* → revoked.
 *
 * - `lost` fires when the lease expired or could not be kept alive past its TTL (etcd unreachable). The
 *   registration then retries by itself, with backoff: it grants a new lease, re-puts the latest record and load
 *   (checking that a key it finds is on its *current* lease: etcd 3.4 restores old leases with a fresh TTL after a
 *   restart), and fires `registered` again. The owner does not restart.
 * - `update`/`putLoad` while lost are remembered and written on re-registration; they do not throw for that.
 * - `revoke()` deletes the keys at once (watchers see deletes immediately) and stops keepalive. Idempotent.
 */
export interface Registration<R> {
  readonly id: string;
  /** The latest record this registration holds (or will write when it is registered again). */
  readonly record: R;
  readonly state: 'registered' | 'lost' | 'revoked';
  update(record: R): Promise<void>;
  on(event: 'lost' | 'registered' | 'revoked', listener: () => void): this;
  off(event: 'lost' | 'registered' | 'revoked', listener: () => void): this;
  revoke(): Promise<void>;
}

export interface NodeRegistration extends Registration<NodeRecord> {
  /** Writes `load/<nodeId>` on the same lease. Callers throttle; the registry writes what it is given. */
  putLoad(load: LoadRecord): Promise<void>;
}

export type GatewayRegistration = Registration<GatewayRecord>;

export interface Registry {
  /**
   * Registers a node under a fresh lease. Rejects with BackendError `ALREADY_REGISTERED` when a live process
   * already holds `nodes/<nodeId>`, and `REGISTRY_UNAVAILABLE` when the backend cannot be reached.
   */
  registerNode(record: NodeRecord): Promise<NodeRegistration>;
  registerGateway(record: GatewayRecord): Promise<GatewayRegistration>;
  /** One consistent read of everything under the prefix. Rejects with `REGISTRY_UNAVAILABLE`. */
  list(): Promise<RegistrySnapshot & { entries: RegistryEntry[] }>;
  /** Seconds left on a lease, or undefined when it no longer exists. */
  leaseTimeToLive(leaseId: string): Promise<number | undefined>;
  /**
   * Follows the registry: a `snapshot` first, then `put`/`delete` in revision order. After an outage or a
   * compaction it resumes from the last seen revision, or resynchronises with a full read and emits the
   * difference as put/delete events, so a listener's view is always "snapshot + events". It never ends by
   * itself; the first snapshot is awaited by the returned promise.
   */
  watch(listener: (event: RegistryEvent) => void, options?: WatchOptions): Promise<RegistryWatch>;
  /** Closes the client. Registrations should be revoked first. */
  close(): Promise<void>;
}
