import { decodeRoomRecord, journalLines, journalText, type RoomRecord, type RoomStore, type RoomUpdate } from './room-store.js';
import { normalizeTtlSeconds } from './session-ttl.js';

function journalKey(room: string, writer: string): string {
  return `${room}\u0000journal\u0000${writer}`;
}

interface Entry {
  /** A record's JSON, or a journal's text. */
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

  async appendJournal(room: string, writer: string, line: string, ttlSeconds: number): Promise<void> {
    const key = journalKey(room, writer);
    const entry = this.live(key);
    if (entry) entry.json += journalText([line]);
    else this.entries.set(key, { json: journalText([line]), expiresAt: this.now() + normalizeTtlSeconds(ttlSeconds) * 1000 });
  }

  async readJournal(room: string, writer: string): Promise<string[]> {
    return journalLines(this.live(journalKey(room, writer))?.json ?? '');
  }

  async resetJournal(room: string, writer: string, lines: string[], ttlSeconds: number): Promise<void> {
    const key = journalKey(room, writer);
    if (lines.length === 0) this.entries.delete(key);
    else this.entries.set(key, { json: journalText(lines), expiresAt: this.now() + normalizeTtlSeconds(ttlSeconds) * 1000 });
  }

  async close(): Promise<void> {}

  /** Records and journals share the map: a journal's key cannot be a room name (rooms have no NUL). */
  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }
}
