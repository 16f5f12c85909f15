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
};
