import type { ServerFrame } from '@messaging-server/protocol';
import { encodeUserId } from './session-key.js';

/** One member of a room, in the room's join order. */
export interface RoomMemberRecord {
  userId: string;
  /** ISO time of the join (the home's clock). */
  joinedAt: string;
  /** The node that last held the member's connection (where the home sends the room's traffic for it). */
  nodeId?: string;
}

/**
 * A room as stored in memcached, `<prefix>room:<R>` (docs/protocol.md, "memcached layout"). The room's home node
 * writes it on every join and leave before it answers, so a new home (after a drain or a crash) continues from it.
 */
export interface RoomRecord {
  room: string;
  /** In join order. An empty room has no record. */
  members: RoomMemberRecord[];
  /**
   * The last place the room gave out in its order (messages and member events share it). A new home starts past it
   * plus a gap (RoomRecord readers never compare places across homes; the gap keeps them rising for the members).
   */
  seq: number;
  /**
   * What the room holds for members that are away, oldest first (v1.2, "Members outlive moves"). Kept in the record,
   * not only in the home's memory, so the home's drain or crash, or a node joining and winning the room, loses none
   * of it: whichever node is home next delivers it after the member's resume.
   */
  held?: Record<string, ServerFrame[]>;
  /** The node that wrote this version, and when. */
  home: string;
  updatedAt: string;
}

/** What an update wants written: the next record, `null` to delete the room's record, or undefined to leave it. */
export type RoomUpdate = (current: RoomRecord | undefined) => RoomRecord | null | undefined;

/**
 * Room records by name (memcached in production, memory in standalone mode and unit tests). The same failure rules
 * as the SessionStore: every operation settles within about 1 s or rejects with BackendError
 * `SESSION_STORE_UNAVAILABLE`, and never hangs.
 */
export interface RoomStore {
  get(room: string): Promise<RoomRecord | undefined>;
  /**
   * Compare-and-set: `update` gets the stored record (undefined: none) and returns what to write. The write happens
   * only if the record did not change since it was read, else `update` runs again on the newer record; so two homes
   * of one room (during a handover) never overwrite each other's changes. Resolves with the record stored afterwards
   * (undefined when there is none). A record that keeps changing under the retries rejects (store unavailable).
   */
  update(room: string, update: RoomUpdate, ttlSeconds: number): Promise<RoomRecord | undefined>;
  /** Extends the record's TTL without changing it; false if there is none. */
  touch(room: string, ttlSeconds: number): Promise<boolean>;
  /**
   * The room's journal written by one node (`writer`): lines (no newline inside), oldest first, each appended without
   * a read, so two writers never share one journal. Appending to no journal creates it with `ttlSeconds`; appending
   * keeps its expiry.
   */
  appendJournal(room: string, writer: string, line: string, ttlSeconds: number): Promise<void>;
  /** The journal's lines, oldest first ([] when there is none). */
  readJournal(room: string, writer: string): Promise<string[]>;
  /** Replaces the journal with `lines` (deletes it when there are none), expiring `ttlSeconds` from now. */
  resetJournal(room: string, writer: string, lines: string[], ttlSeconds: number): Promise<void>;
  close(): Promise<void>;
}

/** `<prefix>room:<encoded room>`: room names follow the userId rule, so they share its key encoding. */
export function roomKey(prefix: string, room: string): string {
  return `${prefix}room:${encodeUserId(room)}`;
}

/** `<prefix>room-journal:<encoded room>:<encoded writer>` (docs/protocol.md, "memcached layout"). */
export function roomJournalKey(prefix: string, room: string, writer: string): string {
  return `${prefix}room-journal:${encodeUserId(room)}:${encodeUserId(writer)}`;
}

/** Lines as a journal stores them: each one ends with a newline. */
export function journalText(lines: string[]): string {
  return lines.map((line) => `${line}\n`).join('');
}

/** A stored journal's lines, oldest first. */
export function journalLines(text: string): string[] {
  return text.split('\n').filter((line) => line.length > 0);
}

/** The room's members in join order, [] when it has none: what `msgctl room` prints. */
export async function readRoomMembers(store: RoomStore, room: string): Promise<string[]> {
  const record = await store.get(room);
  return record ? record.members.map((member) => member.userId) : [];
}

function isHeldMap(value: unknown): value is Record<string, ServerFrame[]> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((frames) => Array.isArray(frames));
}

/** Parses a stored room value; undefined for anything that is not a record of this room. */
export function decodeRoomRecord(room: string, json: string): RoomRecord | undefined {
  try {
    const value = JSON.parse(json) as Partial<RoomRecord> | null;
    if (value && value.room === room && Array.isArray(value.members) && typeof value.seq === 'number') {
      const record = value as RoomRecord;
      // Held frames that are not lists are dropped, not trusted: the home delivers what it finds here.
      if (record.held !== undefined && !isHeldMap(record.held)) delete record.held;
      return record;
    }
  } catch {
    // fall through: unreadable, treated as absent
  }
  return undefined;
}
