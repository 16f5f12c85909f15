import { BackendError } from './errors.js';
import { expiration, STATUS_OK, type MemcachedConnection } from './memcached-connection.js';

/**
 * A counter per key that dies `ttlSeconds` after it was made: what several processes share to count events in a
 * window (the gateways' per-IP /connect limit, docs/decisions.md "The per-IP limit across gateways").
 */
export interface WindowCounter {
  /** Adds one to `key` (made at 1, expiring `ttlSeconds` later, when absent) and returns the new count. */
  increment(key: string, ttlSeconds: number): Promise<number>;
}

/** memcached's binary INCREMENT: one round trip, and the server makes the key with its initial value when absent. */
const OP_INCREMENT = 0x05;

/**
 * A WindowCounter in memcached, on a store's connection (one socket per process). The expiry given at creation is
 * never moved by later increments, so a key counts one fixed window.
 */
export class MemcachedWindowCounter implements WindowCounter {
  constructor(
    private readonly connection: MemcachedConnection,
    private readonly prefix: string,
  ) {}

  increment(key: string, ttlSeconds: number): Promise<number> {
    // Extras: delta (8 bytes), initial value (8), expiration (4).
    const extras = Buffer.alloc(20);
    extras.writeBigUInt64BE(1n, 0);
    extras.writeBigUInt64BE(1n, 8);
    expiration(ttlSeconds).copy(extras, 16);
    return this.connection.operation('increment', async (call) => {
      const response = await call(OP_INCREMENT, `${this.prefix}${key}`, extras);
      if (response.header.status !== STATUS_OK || response.val.length !== 8) {
        throw new BackendError('SESSION_STORE_UNAVAILABLE', `memcached increment answered status ${String(response.header.status)}`);
      }
      return Number(response.val.readBigUInt64BE(0));
    });
  }
}

/** A WindowCounter in one process's memory (standalone and unit tests). Expired keys go once the table is large. */
export class MemoryWindowCounter implements WindowCounter {
  private readonly counts = new Map<string, { count: number; until: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  increment(key: string, ttlSeconds: number): Promise<number> {
    const now = this.now();
    const entry = this.counts.get(key);
    if (entry && entry.until > now) {
      entry.count += 1;
      return Promise.resolve(entry.count);
    }
    if (this.counts.size >= 10_000) for (const [k, e] of this.counts) if (e.until <= now) this.counts.delete(k);
    this.counts.set(key, { count: 1, until: now + ttlSeconds * 1000 });
    return Promise.resolve(1);
  }
}
