import type { ErrorFrame } from '@messaging-server/protocol';
import { MessagingError } from './errors.js';
import type { Heartbeat } from './heartbeat.js';
import type { Outbox } from './outbox.js';

/**
 * Applies an `error` frame to the sends and the heartbeat it answers. Returns the error the client should emit as
 * an `error` event (it answers no send of ours), or undefined.
 */
export function applyErrorFrame(frame: ErrorFrame, outbox: Outbox, heartbeat: Heartbeat): MessagingError | undefined {
  const error = new MessagingError(frame.code, frame.message, frame.id === undefined ? {} : { messageId: frame.id });
  const settled = frame.id !== undefined && outbox.settle(frame.id, error);
  // Any answer to a ping (a rate limit, as `id` or among `ids`) proves the connection alive: waiting on for a
  // pong that will not come would tear a working connection down and resend everything in flight.
  const ping = [frame.id, ...(frame.ids ?? [])].find((id) => heartbeat.owns(id));
  if (ping !== undefined) heartbeat.pong(ping);
  // One RATE_LIMITED answers a whole burst: every other id it names fails the same way.
  for (const id of frame.ids ?? []) {
    if (id !== frame.id) outbox.settle(id, new MessagingError(frame.code, frame.message, { messageId: id }));
  }
  return !settled && (ping === undefined || ping !== frame.id) ? error : undefined;
}
