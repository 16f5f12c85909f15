import type { RoomMemberRecord } from '@messaging-server/core';
import type { ServerFrame } from '@messaging-server/protocol';
import type { RoomAbsences } from './room-absence.js';

/** A new home continues the order past the old home's last persisted place, leaving room for what it gave out since. */
export const HANDOVER_GAP = 1_000_000;

/** What a room's home keeps in memory for one room (RoomHome). */
export interface HomeRoom {
  /** Loaded from the store on first use (after a handover the record carries the previous home's state). */
  members: RoomMemberRecord[];
  seq: number;
  /** The room's one order: every operation runs after the previous one finished. */
  tail: Promise<unknown>;
  /** Members whose connection is gone, and what the room holds for them until they are back. */
  away: RoomAbsences;
  /** Tasks queued or running in the room's order (a room is forgotten only when nothing else waits on it). */
  queued: number;
  /** Members for whom the stored record holds frames (as of this home's last read or write of it). */
  storedHeld: Set<string>;
  /** registryVersion() when the room was last read from the store; `undefined`: never read (or a write failed). */
  readAt: number | undefined;
  /** When the record was last read again for a sender the room did not know (ms). */
  rereadAt: number;
}

/** `first`, then what `second` adds, each frame once (copies held by two homes are the same JSON). */
export function union(first: ServerFrame[], second: ServerFrame[]): ServerFrame[] {
  if (second.length === 0) return first;
  const seen = new Set(first.map((frame) => JSON.stringify(frame)));
  return [...first, ...second.filter((frame) => !seen.has(JSON.stringify(frame)))];
}

/** At most one re-read a second per room for a sender it does not know, so bad frames cannot drive store reads. */
export function mayReread(room: HomeRoom, now = Date.now()): boolean {
  if (now - room.rereadAt < 1000) return false;
  room.rereadAt = now;
  return true;
}

/** A room message crossed nodes when its sender is not on the home, or some other member is not (metrics). */
export function crossedNodes(room: HomeRoom, sender: string, senderNode: string, home: string): boolean {
  return senderNode !== home || room.members.some((m) => m.userId !== sender && (m.nodeId ?? home) !== home);
}
