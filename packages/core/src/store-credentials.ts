import type { CommonConfig } from './config.js';

/**
 * A user name and password for etcd (its users and roles) or memcached (SASL PLAIN). Read from
 * MSG_ETCD_USERNAME / MSG_ETCD_PASSWORD and MSG_MEMCACHED_USERNAME / MSG_MEMCACHED_PASSWORD; never logged.
 */
export interface StoreCredentials {
  username: string;
  password: string;
}

/** The etcd user of a configuration, if it has one (loadConfig has checked that both halves are set). */
export function etcdCredentials(config: CommonConfig): StoreCredentials | undefined {
  const { etcdUsername: username, etcdPassword: password } = config;
  return username !== undefined && password !== undefined ? { username, password } : undefined;
}

/** The memcached SASL user of a configuration, if it has one. */
export function memcachedCredentials(config: CommonConfig): StoreCredentials | undefined {
  const { memcachedUsername: username, memcachedPassword: password } = config;
  return username !== undefined && password !== undefined ? { username, password } : undefined;
}

/**
 * In production a clustered process (standalone keeps its stores in memory) needs both stores' users: stores that take
 * anyone let a pod on the network forge registrations and sessions (issue 28). Each missing one is named.
 */
export function missingStoreCredentials(values: Record<string, unknown>, why: string): string[] {
  return (['ETCD', 'MEMCACHED'] as const)
    .filter((store) => values[store === 'ETCD' ? 'etcdUsername' : 'memcachedUsername'] === undefined)
    .map((store) => `MSG_${store}_USERNAME and MSG_${store}_PASSWORD are required ${why}`);
}
