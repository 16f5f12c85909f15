/** Value rules every side checks the same way; plain regular expressions, so browsers can use them too. */
/** userId: 1–128 characters of `A-Z a-z 0-9 . _ ~ @ -`. */
export const USER_ID_PATTERN = '^[A-Za-z0-9._~@-]{1,128}$';
const USER_ID_REGEX = new RegExp(USER_ID_PATTERN);
export const MESSAGE_ID_MAX_LENGTH = 64;

export function isValidUserId(value: unknown): value is string {
  return typeof value === 'string' && USER_ID_REGEX.test(value);
}

/** A room name follows the userId rule (v1.2). */
export const isValidRoomName = isValidUserId;
export const ROOM_NAME_PATTERN = USER_ID_PATTERN;

/** v1.2 defaults of MSG_ROOM_MAX_MEMBERS and MSG_ROOMS_PER_USER. */
export const DEFAULT_ROOM_MAX_MEMBERS = 50;
export const DEFAULT_ROOMS_PER_USER = 16;

/**
 * True when a token's `rooms` claim grants `room` (v1.2): an undefined claim grants every room; a name ending in `*`
 * grants every room with that prefix (`*` alone grants all); any other name grants exactly itself.
 */
export function roomGranted(grants: readonly string[] | undefined, room: string): boolean {
  if (grants === undefined) return true;
  return grants.some((grant) => (grant.endsWith('*') ? room.startsWith(grant.slice(0, -1)) : grant === room));
}

/**
 * Deepest nesting of arrays and objects accepted in a message's `content` (a scalar is depth 0, `[]` depth 1).
 * Signaling payloads are a few levels deep; without a bound, content nested thousands deep (which fits in 64 KiB)
 * overflows the stack of every recursive serializer on its way.
 */
export const MAX_CONTENT_DEPTH = 64;

/** True when `value` nests arrays or objects deeper than `max`. Iterative: never recursion on the value's depth. */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop() as [unknown, number];
    if (item === null || typeof item !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item as object)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/**
 * SockJS URL query options beside `userId` and `listeningKey`, each `=1` to opt in. `coalesce`: one RATE_LIMITED
 * error per burst answers every refused id in `ids` (v1.1); without it each id gets its own error, as in v1.
 * `receipts` (v1.2): every message written carries a `seq`, confirmed by the client's cumulative `receipt` frames.
 */
export const SOCKJS_QUERY_OPTIONS = { coalesce: 'coalesce', receipts: 'receipts' } as const;
