import type { ErrorCode } from '@messaging-server/protocol';

/**
 * Codes the SDK produces itself, next to the contract's codes (which it passes through unchanged).
 * - TIMEOUT: no ack/error for a send within `sendTimeoutMs`, or no welcome within `connectTimeoutMs`.
 * - CONNECTION_LOST: the message was written to a connection that ended before its ack or error arrived, and the
 *   client stopped for good (or runs with `resendUnanswered: false`); it may or may not have been delivered. While
 *   the client reconnects, such a send is re-sent with the same id instead (receivers drop repeats).
 * - SEND_QUEUE_FULL: the client-side queue of sends made while not connected is at `maxQueue`.
 * - CLOSED: the client was closed (by `close()` or a terminal close code) before the send completed.
 * - CONNECTION_REJECTED: a terminal SockJS close code (4500–4999) ended the client.
 * - HTTP_ERROR: `/connect` answered an error status without a contract error body.
 * - GATEWAY_UNREACHABLE: `/connect` failed at the network level or timed out (the SDK retries).
 * - TURN_UNAUTHORIZED (calls): a TURN server refused the credentials from `/connect`; the gateway's TURN secret
 *   does not match the TURN server's, or the credentials expired.
 * - CALL_FAILED (calls): ICE found no working path between the peers.
 */
export const CLIENT_ERROR_CODES = [
  'TIMEOUT',
  'CONNECTION_LOST',
  'SEND_QUEUE_FULL',
  'CLOSED',
  'CONNECTION_REJECTED',
  'HTTP_ERROR',
  'GATEWAY_UNREACHABLE',
  'TURN_UNAUTHORIZED',
  'CALL_FAILED',
] as const;
export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];

export type MessagingErrorCode = ErrorCode | ClientErrorCode;

export interface MessagingErrorDetails {
  /** HTTP status of a failed `/connect`. */
  status?: number;
  /** SockJS close code that ended the client. */
  closeCode?: number;
  /** The message id a send was given. */
  messageId?: string;
}

/** Every error the SDK rejects with or emits. Branch on `code`, never on `message`. */
export class MessagingError extends Error {
  override readonly name = 'MessagingError';
  readonly code: MessagingErrorCode;
  readonly status: number | undefined;
  readonly closeCode: number | undefined;
  readonly messageId: string | undefined;

  constructor(code: MessagingErrorCode, message: string, details: MessagingErrorDetails = {}) {
    super(message);
    this.code = code;
    this.status = details.status;
    this.closeCode = details.closeCode;
    this.messageId = details.messageId;
  }
}

export function isMessagingError(value: unknown): value is MessagingError {
  return value instanceof MessagingError;
}
