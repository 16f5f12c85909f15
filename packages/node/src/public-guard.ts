import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Readable } from 'node:stream';
import { httpStatusOf, type ErrorCode } from '@messaging-server/protocol';
import type { Logger } from '@messaging-server/core';
import { sendErrorAndClose } from './http-util.js';

/**
 * Every bound on a request to the node's public port, enforced before any route sees it. The defaults are listed in
 * docs/security.md; tests shorten the times.
 */
export interface PublicLimits {
  /** Request target (path and query), bytes. Longer: 400. */
  maxTargetBytes: number;
  /** Header lines. More: 400. */
  maxHeaderCount: number;
  /** Request line and headers together, bytes (node's own check: 431). */
  maxHeaderBytes: number;
  /** One request body, bytes. Larger: 413 before it is read (Content-Length), or once it gets there (chunked). */
  maxBodyBytes: number;
  /** From the connection's first byte (or the previous response) to the end of the headers. */
  headersTimeoutMs: number;
  /** From the first byte of a request to the end of its body. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection between requests. */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_PUBLIC_LIMITS: Readonly<PublicLimits> = {
  maxTargetBytes: 4096,
  maxHeaderCount: 64,
  maxHeaderBytes: 16 * 1024,
  maxBodyBytes: 1 << 20,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
};

/**
 * The limits for a node: the defaults, a body cap never below one transport frame (so an over-limit message still
 * gets MESSAGE_TOO_LARGE over xhr_send), and the caller's overrides.
 */
export function publicLimits(frameLimit: number, overrides: Partial<PublicLimits> = {}): PublicLimits {
  return { ...DEFAULT_PUBLIC_LIMITS, maxBodyBytes: Math.max(DEFAULT_PUBLIC_LIMITS.maxBodyBytes, frameLimit), ...overrides };
}

/** How often node's http server looks for connections past their header and request timeouts (its default is 30 s). */
const TIMEOUT_CHECK_MS = 500;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'OPTIONS']);

/** What the guard hands on, once a request is within every limit. */
export interface PublicRoutes {
  /** Path prefix served by `request` and `upgrade` (e.g. /ws). */
  prefix: string;
  /** A request inside the prefix, its body (if any) already read and replayed. */
  request(req: IncomingMessage, res: ServerResponse): void;
  /** An upgrade inside the prefix; false when the route does not serve it (the guard answers it). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** A request outside the prefix; default 404. */
  outside?(req: IncomingMessage, res: ServerResponse): void;
}

/** The public server with node's own limits set: header bytes, header and request timeouts, checked often enough. */
export function createPublicServer(limits: PublicLimits): Server {
  const server = createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: TIMEOUT_CHECK_MS,
  });
  // node keeps the first N headers and drops the rest silently: one more than allowed, so the guard sees the excess.
  server.maxHeadersCount = limits.maxHeaderCount + 1;
  return server;
}

/** Why a request is refused before it reaches a route; undefined when it may go on. */
export function refusal(req: IncomingMessage, limits: PublicLimits): { code: ErrorCode; message: string } | undefined {
  const target = req.url ?? '';
  // Origin-form only: absolute-form (`GET http://h/ws/…`) and `*` would slip past path checks further down.
  if (!target.startsWith('/')) return { code: 'INVALID_REQUEST', message: 'request target must be a path' };
  if (Buffer.byteLength(target) > limits.maxTargetBytes) return { code: 'INVALID_REQUEST', message: 'request target too long' };
  if (req.rawHeaders.length / 2 > limits.maxHeaderCount) return { code: 'INVALID_REQUEST', message: 'too many headers' };
  if (!METHODS.has(req.method ?? '')) return { code: 'METHOD_NOT_ALLOWED', message: 'method not allowed' };
  const length = req.headers['content-length'];
  if (length !== undefined && Number(length) > limits.maxBodyBytes) return { code: 'PAYLOAD_TOO_LARGE', message: 'body too large' };
  return undefined;
}

function insidePrefix(target: string, prefix: string): boolean {
  if (!target.startsWith(prefix)) return false;
  const next = target.charAt(prefix.length);
  return next === '' || next === '/' || next === '?';
}

/** Answers with a contract error and closes the connection: the rest of its request is never read. */
export function refuse(res: ServerResponse, code: ErrorCode, message: string): void {
  if (code === 'METHOD_NOT_ALLOWED' && !res.headersSent) res.setHeader('allow', [...METHODS].join(', '));
  sendErrorAndClose(res, code, message);
}

/** Ends an upgrade the node does not serve: a plain HTTP answer, then the socket goes. */
export function refuseUpgrade(socket: Duplex, code: ErrorCode): void {
  const status = httpStatusOf(code);
  if (socket.writable) socket.end(`HTTP/1.1 ${String(status)} ${code}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  // A client that never reads its answer must not keep the descriptor.
  setTimeout(() => socket.destroy(), 1000).unref();
}

/**
 * A request with a body is read here, up to the limit, before any route sees it: the route then gets the whole body
 * in one chunk (sockjs copies its body on every chunk it receives, which turns a trickled body quadratic).
 */
function withBody(req: IncomingMessage, res: ServerResponse, limit: number, then: (req: IncomingMessage) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    if (size <= limit) {
      chunks.push(chunk);
      return;
    }
    req.off('data', onData);
    req.off('end', onEnd);
    chunks.length = 0;
    refuse(res, 'PAYLOAD_TOO_LARGE', 'body too large');
  };
  const onEnd = (): void => then(replay(req, Buffer.concat(chunks, size)));
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', () => undefined);
}

/** A stand-in for a request whose body was already read: the same head, the body in one chunk. */
function replay(req: IncomingMessage, body: Buffer): IncomingMessage {
  const copy = Readable.from(body.length > 0 ? [body] : [], { objectMode: false }) as unknown as IncomingMessage;
  Object.assign(copy, {
    url: req.url,
    method: req.method,
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    httpVersion: req.httpVersion,
    socket: req.socket,
    connection: req.socket,
  });
  return copy;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Makes `server` answer every request and upgrade itself first: target, method, header count and body size are
 * checked before any route runs, a body is read (bounded) before the route sees it, and an upgrade that no route
 * serves is answered and closed at once (an unanswered one would hold its socket forever). Replaces any request
 * and upgrade listeners already on the server. Requests node cannot parse (or with headers over maxHeaderBytes) get
 * node's own bare 400 or 431 and are closed.
 */
export function guardPublicServer(server: Server, routes: PublicRoutes, limits: PublicLimits, log: Logger): void {
  const outside = routes.outside ?? ((_req: IncomingMessage, res: ServerResponse) => refuse(res, 'NOT_FOUND', 'not found'));
  const run = (route: (req: IncomingMessage, res: ServerResponse) => void, req: IncomingMessage, res: ServerResponse): void => {
    try {
      route(req, res);
    } catch (error) {
      log.error({ err: error }, 'public request failed');
      if (!res.headersSent) refuse(res, 'INTERNAL', 'internal error');
      else res.destroy();
    }
  };
  server.removeAllListeners('request');
  server.removeAllListeners('upgrade');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const refused = refusal(req, limits);
    if (refused) return refuse(res, refused.code, refused.message);
    // Outside the prefix (404, or the gateway in standalone mode, which bounds its own bodies) nothing is read here.
    if (!insidePrefix(req.url ?? '', routes.prefix)) return run(outside, req, res);
    if (!hasBody(req)) return run(routes.request, req, res);
    withBody(req, res, limits.maxBodyBytes, (complete) => run(routes.request, complete, res));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    try {
      const refused = refusal(req, limits);
      if (refused) return refuseUpgrade(socket, refused.code);
      if (insidePrefix(req.url ?? '', routes.prefix) && routes.upgrade(req, socket, head)) return;
      refuseUpgrade(socket, 'NOT_FOUND');
    } catch (error) {
      log.error({ err: error }, 'public upgrade failed');
      socket.destroy();
    }
  });
}
