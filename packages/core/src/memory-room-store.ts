import { decodeRoomRecord, type RoomRecord, type RoomStore, type RoomUpdate } from './room-store.js';
import { normalizeTtlSeconds } from './session-ttl.js';

interface Entry {
  json: string;
  expiresAt: number;
}

/**
 * The RoomStore of standalone mode and unit tests, with memcached's semantics (JSON values, whole-second TTLs,
 * expired records absent). Operations are synchronous underneath, so an update is trivially atomic.
 */
export class MemoryRoomStore implements RoomStore {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? (() => Date.now());
  }

  async get(room: string): Promise<RoomRecord | undefined> {
    const entry = this.live(room);
    return entry ? decodeRoomRecord(room, entry.json) : undefined;
  }

  async update(room: string, update: RoomUpdate, ttlSeconds: number): Promise<RoomRecord | undefined> {
    const ttl = normalizeTtlSeconds(ttlSeconds);
    const entry = this.live(room);
    const current = entry ? decodeRoomRecord(room, entry.json) : undefined;
    const next = update(current);
    if (next === undefined) return current;
    if (next === null) {
      this.entries.delete(room);
      return undefined;
    }
    const json = JSON.stringify(next);
    this.entries.set(room, { json, expiresAt: this.now() + ttl * 1000 });
    return decodeRoomRecord(room, json);
  }

  async touch(room: string, ttlSeconds: number): Promise<boolean> {
    const ttl = normalizeTtlSeconds(ttlSeconds);
    const entry = this.live(room);
    if (!entry) return false;
    entry.expiresAt = this.now() + ttl * 1000;
    return true;
  }

  async close(): Promise<void> {}

  private live(room: string): Entry | undefined {
    const entry = this.entries.get(room);
    if (entry && entry.expiresAt <= this.now()) {
      this.entries.delete(room);
      return undefined;
    }
    return entry;
  }
}
