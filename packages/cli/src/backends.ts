import {
  EtcdRegistry,
  etcdCredentials,
  memcachedCredentials,
  MemcachedRoomStore,
  MemcachedSessionStore,
  MemcachedWindowCounter,
  MemoryRegistry,
  MemoryRoomStore,
  MemorySessionStore,
  type CommonConfig,
  type Logger,
  type MemcachedStoreOptions,
  type PeerTransport,
  type Registry,
  type RequestSigner,
  type RoomStore,
  type SessionStore,
  type StoreCredentials,
  type WindowCounter,
} from '@messaging-server/core';
import { createPeerTransport } from '@messaging-server/node';

export interface Backends {
  registry: Registry;
  sessions: SessionStore;
  /** v1.2: room records, in the same memcached as the sessions. */
  rooms: RoomStore;
  transport: PeerTransport;
  /** Clustered only: counters in memcached that every gateway shares (the per-IP /connect limit). */
  connectCounter?: WindowCounter;
  close(): Promise<void>;
}

/**
 * The one place that chooses implementations: etcd + memcached for clustered processes, memory for standalone.
 * Everything downstream sees only the contracts.
 */
/** Each adapter binds its own `component` on the logger it is given. */
export function createBackends(
  config: CommonConfig & { clusterSecret?: string },
  logger: Logger,
  mode: 'distributed' | 'memory',
  /** A node's own identity: its transport signs with it and sends no cluster secret (nodes call only `node` routes). */
  signer?: RequestSigner,
): Backends {
  const registry: Registry =
    mode === 'memory'
      ? new MemoryRegistry({ leaseTtlSeconds: config.leaseTtlSeconds })
      : new EtcdRegistry({
          endpoints: config.etcdEndpoints,
          prefix: config.etcdPrefix,
          leaseTtlSeconds: config.leaseTtlSeconds,
          logger,
          ...credentialsOption(etcdCredentials(config)),
        });
  const memcachedSessions = mode === 'memory' ? undefined : new MemcachedSessionStore(memcachedOptions(config, logger));
  const sessions: SessionStore = memcachedSessions ?? new MemorySessionStore();
  // One memcached connection per process: the rooms ride on the sessions' socket and write batcher.
  const rooms: RoomStore = memcachedSessions
    ? new MemcachedRoomStore({ ...memcachedOptions(config, logger), connection: memcachedSessions.connection })
    : new MemoryRoomStore();
  const transport = createPeerTransport({
    ...(signer ? { signer } : config.clusterSecret === undefined ? {} : { clusterSecret: config.clusterSecret }),
    logger,
  });
  return {
    registry,
    sessions,
    rooms,
    transport,
    ...(memcachedSessions ? { connectCounter: new MemcachedWindowCounter(memcachedSessions.connection, config.memcachedPrefix) } : {}),
    async close() {
      await Promise.allSettled([transport.close(), sessions.close(), rooms.close(), registry.close()]);
    },
  };
}

/** How a process reaches memcached (MSG_MEMCACHED_*), for each of its memcached stores. */
export function memcachedOptions(config: CommonConfig, logger: Logger): MemcachedStoreOptions {
  return { servers: config.memcachedServers, prefix: config.memcachedPrefix, logger, ...credentialsOption(memcachedCredentials(config)) };
}

/** `{ credentials }` when there are some: the adapters' option is optional, never undefined. */
export function credentialsOption(credentials: StoreCredentials | undefined): { credentials?: StoreCredentials } {
  return credentials === undefined ? {} : { credentials };
}
