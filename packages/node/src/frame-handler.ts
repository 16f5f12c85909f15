import type { Logger } from '@messaging-server/core';
import { isRoomMessageFrame, type ClientFrame, type JoinFrame, type LeaveFrame, type RoomMessageFrame } from '@messaging-server/protocol';
import { parseClientFrame } from '@messaging-server/protocol/schemas';
import type { ClientSession } from './client-session.js';
import type { Envelope } from './envelope.js';
import { ERROR_TEXT } from './frame-errors.js';

export interface FrameHandlerDeps {
  maxMessageBytes: number;
  log: Logger;
  /** Hands a stamped message to the router. */
  route(envelope: Envelope): void;
  /** v1.2: a receipt for everything up to `seq` written to this connection. */
  confirm(session: ClientSession, seq: number): void;
  /** v1.2: a join, leave or room message (its `from`, if any, already checked); absent: rooms are off. */
  room?(session: ClientSession, frame: JoinFrame | LeaveFrame | RoomMessageFrame, size: number): void;
}

/**
 * One client frame on an open connection: rate limits first (oversized frames are charged too, so a flood of them is
 * rate limited like any other), then size, schema, ping, and the sender check; a valid message goes to the router.
 */
export function createFrameHandler(deps: FrameHandlerDeps): (session: ClientSession, text: string) => void {
  const { maxMessageBytes } = deps;
  return (session, text) => {
    const size = Buffer.byteLength(text, 'utf8');
    const now = Date.now();
    let rate = session.messageBucket.take(now);
    if (rate === 'ok') rate = session.byteBucket.take(now, size);
    if (rate === 'ok' && size > maxMessageBytes) {
      session.sendError('MESSAGE_TOO_LARGE', `frame exceeds ${String(maxMessageBytes)} bytes`);
      return;
    }
    const parsed = size > maxMessageBytes ? undefined : parseClientFrame(text);
    const id = parsed === undefined ? undefined : parsed.ok ? messageIdOf(parsed.value) : parsed.id;
    if (rate !== 'ok' || parsed === undefined) {
      session.rateLimited(id, ERROR_TEXT.RATE_LIMITED);
      if (rate === 'abusive') {
        deps.log.warn({ userId: session.userId }, 'closing connection far over its rate limit');
        session.close('protocol_violation');
      }
      return;
    }
    if (!parsed.ok) {
      session.sendError('INVALID_MESSAGE', parsed.message, parsed.id);
      return;
    }
    const frame = parsed.value;
    if (frame.type === 'receipt') {
      // Without receipts=1 there is nothing to confirm; the frame is valid and changes nothing.
      if (session.receipts) deps.confirm(session, frame.seq);
      return;
    }
    if (frame.type === 'ping') {
      session.send(frame.id === undefined ? { type: 'pong' } : { type: 'pong', id: frame.id });
      return;
    }
    if ('from' in frame && frame.from !== undefined && frame.from !== session.userId) {
      session.sendError('FORBIDDEN_SENDER', ERROR_TEXT.FORBIDDEN_SENDER, frame.id);
      return;
    }
    if (frame.type === 'join' || frame.type === 'leave' || isRoomMessageFrame(frame)) {
      if (deps.room) deps.room(session, frame, size);
      else session.sendError('INVALID_MESSAGE', 'rooms are not available on this node', frame.id);
      return;
    }
    const envelope: Envelope = {
      from: session.userId,
      to: frame.to,
      content: frame.content,
      origin: { kind: 'local', cid: session.cid },
      size: text.length,
    };
    if (frame.id !== undefined) {
      envelope.id = frame.id;
      session.unsettled += 1;
    }
    deps.route(envelope);
  };
}

function messageIdOf(frame: ClientFrame): string | undefined {
  return frame.type === 'receipt' ? undefined : frame.id;
}
