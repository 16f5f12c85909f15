import type { SessionRecord } from '@messaging-server/protocol';
import type { SessionStore } from './session-store.js';
import { normalizeTtlSeconds } from './session-ttl.js';
import { secretsEqual } from './secure-compare.js';

export interface MemorySessionStoreOptions {
  /** Clock in milliseconds; defaults to Date.now (so fake timers apply). */
  now?: () => number;
}

interface Entry {
  json: string;
  listeningKey: string;
  expiresAt: number;
}

const SWEEP_EVERY_WRITES = 1024;

/**
 * The SessionStore of standalone mode and unit tests, with memcached's semantics: records are stored as JSON
 * (callers never share an object with the store), TTLs in whole seconds, expired records are absent.
 * Operations are synchronous underneath, so racing creates are trivially atomic.
 */
export class MemorySessionStore implements SessionStore {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private writesSinceSweep = 0;

  constructor(options: MemorySessionStoreOptions = {}) {
    this.now = options.now ?? (() => Date.now());
  }

  /** Live records (expired ones excluded), for diagnostics and tests. */
  get size(): number {
    this.sweep();
    return this.entries.size;
  }

  async get(userId: string): Promise<SessionRecord | undefined> {
    const entry = this.live(userId);
    return entry ? (JSON.parse(entry.json) as SessionRecord) : undefined;
  }

  async create(record: SessionRecord, ttlSeconds: number): Promise<boolean> {
    const ttl = normalizeTtlSeconds(ttlSeconds);
    if (this.live(record.userId)) return false;
    this.write(record, ttl);
    return true;
  }

  async put(record: SessionRecord, ttlSeconds: number): Promise<void> {
    this.write(record, normalizeTtlSeconds(ttlSeconds));
  }

  async touch(userId: string, ttlSeconds: number): Promise<boolean> {
    const ttl = normalizeTtlSeconds(ttlSeconds);
    const entry = this.live(userId);
    if (!entry) return false;
    entry.expiresAt = this.now() + ttl * 1000;
    return true;
  }

  async deleteIfMatches(userId: string, listeningKey: string): Promise<boolean> {
    const entry = this.live(userId);
    if (!entry || !secretsEqual(entry.listeningKey, listeningKey)) return false;
    this.entries.delete(userId);
    return true;
  }

  async updateIfMatches(
    userId: string,
    listeningKey: string,
    update: (current: SessionRecord) => SessionRecord | undefined,
    ttlSeconds: number,
  ): Promise<boolean> {
    const entry = this.live(userId);
    if (!entry || !secretsEqual(entry.listeningKey, listeningKey)) return false;
    const next = update(JSON.parse(entry.json) as SessionRecord);
    if (next === undefined) return false;
    // Under the key it was read from, as memcached's CAS does, whatever userId the update returned.
    this.write({ ...next, userId }, normalizeTtlSeconds(ttlSeconds));
    return true;
  }

  async close(): Promise<void> {
    this.entries.clear();
  }

  private live(userId: string): Entry | undefined {
    const entry = this.entries.get(userId);
    if (entry && entry.expiresAt <= this.now()) {
      this.entries.delete(userId);
      return undefined;
    }
    return entry;
  }

  private write(record: SessionRecord, ttl: number): void {
    this.entries.set(record.userId, {
      json: JSON.stringify(record),
      listeningKey: record.listeningKey,
      expiresAt: this.now() + ttl * 1000,
    });
    // Expired records of users that never come back would otherwise stay forever.
    if (++this.writesSinceSweep >= SWEEP_EVERY_WRITES) this.sweep();
  }

  private sweep(): void {
    this.writesSinceSweep = 0;
    const now = this.now();
    for (const [userId, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(userId);
  }
}
