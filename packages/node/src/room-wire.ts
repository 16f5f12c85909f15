import type { JsonValue, ServerFrame } from '@messaging-server/protocol';
import { isValidRoomName, isValidUserId } from '@messaging-server/protocol';

/**
 * The rooms' internal wire (v1.2), on the same guarded internal API as `/deliver`:
 * - POST ROOM_OP_PATH `RoomOp` → 200 `RoomAnswer`: a member's node hands a join, leave or room message to the room's
 *   home node, which serialises the room's operations.
 * - POST ROOM_FANOUT_PATH `RoomFanout` → 200 `{delivered, missed}`: the home hands one copy of a room frame to a
 *   node that holds members, with the list of those members; that node writes it to each one's connection, and
 *   names in `missed` the members it has no connection for (the home holds the frame for them).
 */
export const ROOM_OP_PATH = '/internal/v1/room-op';
export const ROOM_FANOUT_PATH = '/internal/v1/room-fanout';

export type RoomOp =
  | { op: 'join'; room: string; userId: string; nodeId: string }
  | { op: 'leave'; room: string; userId: string; nodeId: string }
  /** After a move: still a member? (answers `joined`, and the home now sends to this node) — never joins. */
  | { op: 'resume'; room: string; userId: string; nodeId: string }
  | { op: 'message'; room: string; userId: string; nodeId: string; content: JsonValue; id?: string }
  /**
   * The member's connection on `nodeId` ended without its clean close (it is moving): the home holds what it sends
   * the member until its resume, starting with `frames`, the room messages its connection left unconfirmed.
   */
  | { op: 'away'; room: string; userId: string; nodeId: string; frames: ServerFrame[] };

export type RoomAnswer =
  | { status: 'joined'; members: string[] }
  | { status: 'ack' }
  | { status: 'error'; code: 'NOT_A_MEMBER' | 'ROOM_FULL' | 'RELAY_FAILED' };

export interface RoomFanout {
  room: string;
  to: string[];
  frame: ServerFrame;
}

export function parseRoomOp(body: unknown): RoomOp | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const b = body as Record<string, unknown>;
  if (!isValidRoomName(b['room']) || !isValidUserId(b['userId']) || typeof b['nodeId'] !== 'string') return undefined;
  if (b['op'] === 'join' || b['op'] === 'leave' || b['op'] === 'resume') return { op: b['op'], room: b['room'], userId: b['userId'], nodeId: b['nodeId'] };
  if (b['op'] === 'away') {
    const frames = b['frames'];
    if (!Array.isArray(frames) || !frames.every((f) => isRoomFrameOf(f, b['room'] as string))) return undefined;
    return { op: 'away', room: b['room'], userId: b['userId'], nodeId: b['nodeId'], frames: frames as ServerFrame[] };
  }
  if (b['op'] !== 'message' || !('content' in b)) return undefined;
  const op: RoomOp = { op: 'message', room: b['room'], userId: b['userId'], nodeId: b['nodeId'], content: b['content'] as JsonValue };
  if (typeof b['id'] === 'string') op.id = b['id'];
  return op;
}

export function parseRoomFanout(body: unknown): RoomFanout | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const b = body as Record<string, unknown>;
  const to = b['to'];
  const frame = b['frame'];
  if (!isValidRoomName(b['room']) || !Array.isArray(to) || !to.every(isValidUserId)) return undefined;
  if (frame === null || typeof frame !== 'object') return undefined;
  const type = (frame as Record<string, unknown>)['type'];
  if (type !== 'message' && type !== 'member' && type !== 'joined') return undefined;
  return { room: b['room'], to: to as string[], frame: frame as ServerFrame };
}

/** A room message frame of `room` (what a member's node hands back unconfirmed). */
function isRoomFrameOf(frame: unknown, room: string): boolean {
  if (frame === null || typeof frame !== 'object') return false;
  const f = frame as Record<string, unknown>;
  return f['type'] === 'message' && f['room'] === room && isValidUserId(f['from']) && 'content' in f;
}
