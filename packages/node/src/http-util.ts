import type { IncomingMessage, ServerResponse } from 'node:http';
import { httpStatusOf, type ErrorCode } from '@messaging-server/protocol';

export class BodyTooLargeError extends Error {}

/** Reads a body up to `limit` bytes, as sent (a signature covers these bytes). Rejects on oversize (BodyTooLargeError). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLargeError('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A read body as JSON: undefined when empty. Throws SyntaxError on bad JSON. */
export function parseJson(raw: Buffer): unknown {
  return raw.length === 0 ? undefined : JSON.parse(raw.toString('utf8'));
}

/** Reads a JSON body up to `limit` bytes. Rejects on oversize (BodyTooLargeError) or bad JSON (SyntaxError). */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return parseJson(await readBody(req, limit));
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A contract error: its HTTP status comes from the protocol's code table. */
export function sendError(res: ServerResponse, code: ErrorCode, message: string): void {
  sendJson(res, httpStatusOf(code), { error: { code, message } });
}

/**
 * A contract error, then the connection goes: not another byte of the request is read (a refused body may be endless).
 * The response lets go of its socket before 'finish', so it is held here.
 */
export function sendErrorAndClose(res: ServerResponse, code: ErrorCode, message: string): void {
  const socket = res.socket;
  socket?.pause();
  res.shouldKeepAlive = false;
  res.once('finish', () => socket?.destroy());
  sendError(res, code, message);
}
