import type { FrameErrorCode } from '@messaging-server/protocol';

/** The message text of each error frame code. */
export const ERROR_TEXT: Readonly<Record<FrameErrorCode, string>> = {
  INVALID_MESSAGE: 'invalid message',
  MESSAGE_TOO_LARGE: 'message too large',
  FORBIDDEN_SENDER: 'from must be your own userId',
  PEER_UNAVAILABLE: 'recipient is not connected',
  EXPIRED: 'recipient did not connect in time',
  QUEUE_FULL: 'recipient queue is full',
  RATE_LIMITED: 'rate limit exceeded',
  RELAY_FAILED: 'recipient node did not answer',
  INVALID_ROOM: 'room name must be 1-128 characters of A-Z a-z 0-9 . _ ~ @ -',
  NOT_A_MEMBER: 'you are not a member of this room',
  ROOM_FULL: 'the room is full',
  TOO_MANY_ROOMS: 'you are in too many rooms',
  FORBIDDEN_ROOM: 'your token does not grant this room',
};
