/**
 * The ajv schemas and validators of client frames and `/connect` bodies: the `@messaging-server/protocol/schemas`
 * entry point, imported by gateways and nodes only. It compiles the schemas on import (which needs `eval`, so a page
 * under a strict CSP could not load it) and pulls in ajv; the package index, which the SDK uses, stays free of both.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import type { ClientFrame, ConnectRequest } from './types.js';
import { MAX_CONTENT_DEPTH, MESSAGE_ID_MAX_LENGTH, nestedDeeperThan, USER_ID_PATTERN } from './limits.js';

const userId = { type: 'string', pattern: USER_ID_PATTERN } as const;
const messageId = { type: 'string', minLength: 1, maxLength: MESSAGE_ID_MAX_LENGTH } as const;
// A room name is checked by the node (INVALID_ROOM, not INVALID_MESSAGE), so the schema only asks for a string.
const roomName = { type: 'string', maxLength: 1024 } as const;

export const connectRequestSchema = {
  type: 'object',
  required: ['userId'],
  properties: {
    userId: { type: 'string' },
    avoid: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 256 } },
    room: { type: 'string' },
  },
} as const;

export const messageFrameSchema = {
  type: 'object',
  required: ['to', 'content'],
  properties: {
    type: { const: 'message' },
    to: userId,
    from: { type: 'string' },
    id: messageId,
    content: {},
  },
} as const;

/** v1.2: a room message has `room` and never `to` (the validator picks this schema when `room` is present). */
export const roomMessageFrameSchema = {
  type: 'object',
  required: ['room', 'content'],
  // `to` present (any value) fails the frame: a frame has `to` or `room`, never both.
  not: { required: ['to'], properties: { to: {} } },
  properties: {
    type: { const: 'message' },
    room: roomName,
    from: { type: 'string' },
    id: messageId,
    content: {},
  },
} as const;

export const joinFrameSchema = {
  type: 'object',
  required: ['type', 'room'],
  properties: { type: { const: 'join' }, room: roomName, id: messageId },
} as const;

export const leaveFrameSchema = {
  type: 'object',
  required: ['type', 'room'],
  properties: { type: { const: 'leave' }, room: roomName, id: messageId },
} as const;

export const pingFrameSchema = {
  type: 'object',
  required: ['type'],
  properties: { type: { const: 'ping' }, id: messageId },
} as const;

export const receiptFrameSchema = {
  type: 'object',
  required: ['type', 'seq'],
  properties: { type: { const: 'receipt' }, seq: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
} as const;

// Unknown fields are ignored rather than rejected: the contract may grow new optional fields, and an older node
// must not refuse a newer client's frame (the seed closed connections on unknown fields, defect 5).
const ajv = new Ajv({ allErrors: false, strict: true });
const validateConnect: ValidateFunction<ConnectRequest> = ajv.compile<ConnectRequest>(connectRequestSchema);
const validateMessage = ajv.compile(messageFrameSchema);
const validatePing = ajv.compile(pingFrameSchema);
const validateReceipt = ajv.compile(receiptFrameSchema);
const validateRoomMessage = ajv.compile(roomMessageFrameSchema);
const validateJoin = ajv.compile(joinFrameSchema);
const validateLeave = ajv.compile(leaveFrameSchema);

const VALIDATORS: Readonly<Record<string, ValidateFunction>> = {
  ping: validatePing,
  receipt: validateReceipt,
  join: validateJoin,
  leave: validateLeave,
};

export type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string; id?: string };

function describe(validate: ValidateFunction): string {
  const first = validate.errors?.[0];
  if (!first) return 'invalid frame';
  const where = first.instancePath ? first.instancePath.slice(1) : 'frame';
  return `${where} ${first.message ?? 'is invalid'}`;
}

function safeId(value: unknown): string | undefined {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const id = (value as Record<string, unknown>)['id'];
    if (typeof id === 'string' && id.length > 0 && id.length <= MESSAGE_ID_MAX_LENGTH) return id;
  }
  return undefined;
}

/** Validates an already-parsed client frame. A failed result carries the frame's `id` when it has a usable one. */
export function validateClientFrame(value: unknown): ParseResult<ClientFrame> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, message: 'frame must be a JSON object' };
  }
  const record = value as Record<string, unknown>;
  const type = record['type'];
  if (type !== undefined && type !== 'message' && (typeof type !== 'string' || !Object.hasOwn(VALIDATORS, type))) {
    return withId({ ok: false, message: 'type must be "message", "ping", "receipt", "join" or "leave"' }, safeId(value));
  }
  const validate = typeof type === 'string' && type !== 'message' ? (VALIDATORS[type] as ValidateFunction) : 'room' in record ? validateRoomMessage : validateMessage;
  if (!validate(value)) {
    const message = validate === validateRoomMessage && 'to' in record ? 'a message has "to" or "room", never both' : describe(validate);
    return withId({ ok: false, message }, safeId(value));
  }
  const frame = value as ClientFrame;
  if ('content' in frame && nestedDeeperThan(frame.content, MAX_CONTENT_DEPTH)) {
    return withId({ ok: false, message: `content is nested deeper than ${String(MAX_CONTENT_DEPTH)} levels` }, frame.id);
  }
  return { ok: true, value: frame };
}

/** Parses and validates one SockJS text message from a client. */
export function parseClientFrame(text: string): ParseResult<ClientFrame> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, message: 'frame is not valid JSON' };
  }
  return validateClientFrame(value);
}

export function validateConnectRequest(value: unknown): ParseResult<ConnectRequest> {
  if (validateConnect(value)) return { ok: true, value };
  return { ok: false, message: describe(validateConnect) };
}

function withId<T>(result: { ok: false; message: string }, id: string | undefined): ParseResult<T> {
  return id === undefined ? result : { ...result, id };
}
