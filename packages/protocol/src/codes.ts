/**
 * The contract's error codes, each with its HTTP status (for /connect answers) and whether a client may retry
 * the same request unchanged. One table, so the gateway, the node, the SDK and the docs never disagree.
 */
export const ERROR_CODES = {
  INVALID_REQUEST: { httpStatus: 400, retryable: false },
  UNAUTHORIZED: { httpStatus: 401, retryable: false },
  INVALID_USER_ID: { httpStatus: 400, retryable: false },
  /** v1.2: a room name outside the userId rule. */
  INVALID_ROOM: { httpStatus: 400, retryable: false },
  USER_TAKEN: { httpStatus: 409, retryable: false },
  PAYLOAD_TOO_LARGE: { httpStatus: 413, retryable: false },
  UNSUPPORTED_MEDIA_TYPE: { httpStatus: 415, retryable: false },
  RATE_LIMITED: { httpStatus: 429, retryable: true },
  ORIGIN_NOT_ALLOWED: { httpStatus: 403, retryable: false },
  NO_NODE_AVAILABLE: { httpStatus: 503, retryable: true },
  SESSION_STORE_UNAVAILABLE: { httpStatus: 503, retryable: true },
  /** The token's key set (MSG_AUTH_JWKS_URL) cannot be fetched: our outage, not a bad token. */
  AUTH_UNAVAILABLE: { httpStatus: 503, retryable: true },
  NOT_FOUND: { httpStatus: 404, retryable: false },
  METHOD_NOT_ALLOWED: { httpStatus: 405, retryable: false },
  INTERNAL: { httpStatus: 500, retryable: true },
  /** A process that is still starting (a node's internal port before its node is wired). */
  NOT_READY: { httpStatus: 503, retryable: true },
  // Frame-level codes (sent in `error` frames). Their HTTP status is what the internal API would answer.
  INVALID_MESSAGE: { httpStatus: 400, retryable: false },
  MESSAGE_TOO_LARGE: { httpStatus: 413, retryable: false },
  FORBIDDEN_SENDER: { httpStatus: 403, retryable: false },
  PEER_UNAVAILABLE: { httpStatus: 404, retryable: true },
  EXPIRED: { httpStatus: 504, retryable: true },
  QUEUE_FULL: { httpStatus: 503, retryable: true },
  RELAY_FAILED: { httpStatus: 502, retryable: true },
  /** v1.2 rooms: a room message (or op) from a user who is not a member. */
  NOT_A_MEMBER: { httpStatus: 403, retryable: false },
  /** v1.2 rooms: the room has MSG_ROOM_MAX_MEMBERS members. */
  ROOM_FULL: { httpStatus: 409, retryable: true },
  /** v1.2 rooms: the user is in MSG_ROOMS_PER_USER rooms. */
  TOO_MANY_ROOMS: { httpStatus: 409, retryable: false },
  /** v1.2 rooms: the user's token (`rooms` claim) does not grant the room. */
  FORBIDDEN_ROOM: { httpStatus: 403, retryable: false },
} as const satisfies Record<string, { httpStatus: number; retryable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Codes that may appear in an `error` frame sent to a SockJS client. */
export const FRAME_ERROR_CODES = [
  'INVALID_MESSAGE',
  'MESSAGE_TOO_LARGE',
  'FORBIDDEN_SENDER',
  'PEER_UNAVAILABLE',
  'EXPIRED',
  'QUEUE_FULL',
  'RATE_LIMITED',
  'RELAY_FAILED',
  'INVALID_ROOM',
  'NOT_A_MEMBER',
  'ROOM_FULL',
  'TOO_MANY_ROOMS',
  'FORBIDDEN_ROOM',
] as const satisfies readonly ErrorCode[];
export type FrameErrorCode = (typeof FRAME_ERROR_CODES)[number];

export function httpStatusOf(code: ErrorCode): number {
  return ERROR_CODES[code].httpStatus;
}

export function isRetryable(code: ErrorCode): boolean {
  return ERROR_CODES[code].retryable;
}

/**
 * SockJS close codes. 4000–4499: recoverable, the client calls /connect again.
 * 4500–4999: terminal for these credentials, the client stops.
 */
export const CLOSE_CODES = {
  node_shutdown: 4000,
  session_expired: 4001,
  store_unavailable: 4002,
  node_full: 4003,
  idle_timeout: 4004,
  slow_consumer: 4005,
  /** v1.2: a connection with receipts on left messages unconfirmed past MSG_MAX_UNCONFIRMED or 10 s. */
  receipts_stalled: 4006,
  invalid_credentials: 4500,
  wrong_node: 4501,
  key_already_used: 4502,
  session_replaced: 4503,
  protocol_violation: 4504,
  origin_not_allowed: 4505,
} as const;

export type CloseReason = keyof typeof CLOSE_CODES;
export type CloseCode = (typeof CLOSE_CODES)[CloseReason];

const REASON_BY_CODE = new Map<number, CloseReason>(
  Object.entries(CLOSE_CODES).map(([reason, code]) => [code, reason as CloseReason]),
);

export function closeReasonOf(code: number): CloseReason | undefined {
  return REASON_BY_CODE.get(code);
}

/** True for 4000–4499: reconnect through /connect (with backoff). */
export function isRecoverableClose(code: number): boolean {
  return code >= 4000 && code <= 4499;
}

/** True for 4500–4999: stop; these credentials will never work again. */
export function isTerminalClose(code: number): boolean {
  return code >= 4500 && code <= 4999;
}
