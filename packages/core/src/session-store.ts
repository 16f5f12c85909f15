import type { SessionRecord } from '@messaging-server/protocol';

/**
 * Session records by userId (memcached in production, memory in standalone mode and unit tests).
 *
 * Key: `<prefix>session:<encoded userId>`. Every allowed userId maps to a distinct memcached-safe key.
 * Values are JSON. TTLs are in seconds and enforced by the store: an expired record is simply absent.
 *
 * Every operation either settles within `operationTimeoutMs` (≈ 1 s) or rejects with BackendError
 * `SESSION_STORE_UNAVAILABLE`; none hangs when the backend is down. The same instance recovers by itself once
 * the backend is back.
 */
export interface SessionStore {
  get(userId: string): Promise<SessionRecord | undefined>;
  /** Atomic add: true if this call created the record, false if one already existed. Of racing creates, one wins. */
  create(record: SessionRecord, ttlSeconds: number): Promise<boolean>;
  /** Unconditional write (replace policy, re-assertion after a memcached restart). */
  put(record: SessionRecord, ttlSeconds: number): Promise<void>;
  /** Extends the TTL without changing the value. False if no record exists. */
  touch(userId: string, ttlSeconds: number): Promise<boolean>;
  /**
   * Deletes the record only if it is still the one with this listeningKey, so a late close never deletes a newer
   * session. True if it deleted.
   */
  deleteIfMatches(userId: string, listeningKey: string): Promise<boolean>;
  /**
   * Compare-and-set on the record with this listeningKey: `update` gets the stored record and returns the one to
   * write (or undefined to leave it). The write happens only if the record did not change since it was read (CAS),
   * so a write based on an earlier read never overwrites a newer session. False (nothing written) when the record is
   * gone, carries another key, or `update` declined. The handshake's ack, the keeper's re-assertion and the moving
   * mark (v1.1) all write through it. A record that keeps changing under a backend's retries is a store failure
   * (SESSION_STORE_UNAVAILABLE), never `false`: false tells the caller its session was replaced, which is final.
   */
  updateIfMatches(
    userId: string,
    listeningKey: string,
    update: (current: SessionRecord) => SessionRecord | undefined,
    ttlSeconds: number,
  ): Promise<boolean>;
  close(): Promise<void>;
}
