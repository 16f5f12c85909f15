import type { IncomingMessage } from 'node:http';
import { isValidRoomName, isValidUserId, type ConnectRequest } from '@messaging-server/protocol';
import { validateConnectRequest } from '@messaging-server/protocol/schemas';
import { HttpError } from './http-error.js';

export const MAX_CONNECT_BODY_BYTES = 4096;

type BodyKind = 'json' | 'form';

function bodyKindOf(contentType: string | undefined): BodyKind | undefined {
  const mediaType = contentType?.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  if (mediaType === 'application/json' || /^application\/[\w.+-]+\+json$/.test(mediaType)) return 'json';
  if (mediaType === 'application/x-www-form-urlencoded') return 'form';
  return undefined;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return Number(length) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

const tooLarge = (): HttpError =>
  new HttpError('PAYLOAD_TOO_LARGE', `body exceeds ${String(MAX_CONNECT_BODY_BYTES)} bytes`, {
    // The rest of an oversized body is discarded, not read: ask the client not to reuse the connection.
    headers: { connection: 'close' },
  });

/**
 * Reads at most `limit` bytes of the request body. Stops at limit + 1 byte: the remainder is never buffered
 * (node discards it after the answer, and the connection is closed).
 */
export async function readLimitedBody(req: IncomingMessage, limit = MAX_CONNECT_BODY_BYTES): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge();
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit) {
        cleanup();
        req.unpipe();
        // Keep draining into nothing so the socket is not stuck while the 413 is written.
        req.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, received));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(new HttpError('INVALID_REQUEST', 'request body could not be read', { cause: error }));
    };
    const onAborted = (): void => onError(new Error('request aborted'));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('aborted', onAborted);
  });
}

function fromForm(text: string): Record<string, unknown> {
  const params = new URLSearchParams(text);
  const value: Record<string, unknown> = {};
  const userId = params.get('userId');
  if (userId !== null) value['userId'] = userId;
  const avoid = params.getAll('avoid').flatMap((item) => item.split(',')).filter((item) => item.length > 0);
  if (avoid.length > 0) value['avoid'] = avoid;
  const room = params.get('room');
  if (room !== null) value['room'] = room;
  return value;
}

function fromJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError('INVALID_REQUEST', 'body is not valid JSON');
  }
}

/** Validates the parsed body: a missing userId is INVALID_REQUEST, a malformed one INVALID_USER_ID. */
export function toConnectRequest(value: unknown): ConnectRequest {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpError('INVALID_REQUEST', 'body must be a JSON object');
  }
  const userId = (value as Record<string, unknown>)['userId'];
  if (userId === undefined || userId === null) throw new HttpError('INVALID_REQUEST', 'userId is required');
  if (!isValidUserId(userId)) {
    throw new HttpError('INVALID_USER_ID', 'userId must be 1-128 characters of A-Z a-z 0-9 . _ ~ @ -');
  }
  const result = validateConnectRequest(value);
  if (!result.ok) throw new HttpError('INVALID_REQUEST', result.message);
  const { avoid, room } = result.value;
  if (room !== undefined && !isValidRoomName(room)) {
    throw new HttpError('INVALID_ROOM', 'room must be 1-128 characters of A-Z a-z 0-9 . _ ~ @ -');
  }
  return { userId, ...(avoid === undefined ? {} : { avoid }), ...(room === undefined ? {} : { room }) };
}

/** Parses a /connect request: JSON `{userId, avoid?}` or the seed's form `userId=alice`. */
export async function parseConnectRequest(req: IncomingMessage): Promise<ConnectRequest> {
  const contentType = req.headers['content-type'];
  const kind = bodyKindOf(contentType);
  if (kind === undefined) {
    if (contentType === undefined && !hasBody(req)) throw new HttpError('INVALID_REQUEST', 'body is required');
    throw new HttpError('UNSUPPORTED_MEDIA_TYPE', 'body must be application/json or application/x-www-form-urlencoded');
  }
  const text = (await readLimitedBody(req)).toString('utf8');
  if (kind === 'form') return toConnectRequest(fromForm(text));
  if (text.trim().length === 0) throw new HttpError('INVALID_REQUEST', 'body is required');
  return toConnectRequest(fromJson(text));
}
