import { isValidRoomName, isValidUserId } from './limits.js';

/**
 * The ids that cross module and process boundaries, as named types: a NodeId cannot be passed where a UserId is
 * wanted, though both are plain strings at run time (livekit's `livekit.NodeID` / `ParticipantIdentity`). A value
 * gets its name where it comes in: a node id from the configuration or a registry record, a user id or room name
 * from a frame, a token or a node-to-node request, each checked there by its parse function (or, from a source that
 * has checked it already, named with `as…`).
 */
declare const brand: unique symbol;
type Named<Name extends string> = string & { readonly [brand]: Name };

export type NodeId = Named<'NodeId'>;
export type UserId = Named<'UserId'>;
export type RoomName = Named<'RoomName'>;

/** A node id from a source that has checked it (the configuration's schema, a registry record, a signed request). */
export function asNodeId(value: string): NodeId {
  return value as NodeId;
}

/** A node id from the outside: any non-empty string (the registry key and the proxy path encode it). */
export function parseNodeId(value: unknown): NodeId | undefined {
  return typeof value === 'string' && value.length > 0 ? (value as NodeId) : undefined;
}

export function parseUserId(value: unknown): UserId | undefined {
  return isValidUserId(value) ? (value as UserId) : undefined;
}

export function parseRoomName(value: unknown): RoomName | undefined {
  return isValidRoomName(value) ? (value as RoomName) : undefined;
}
