/**
 * The one raw wire client of the harness and the integration tests: POST /connect, the node's socket URL for a
 * session (the raw `<prefix>/websocket` transport or SockJS's framed one), the frames of a websocket message, the
 * wait for `welcome`, and close. No sockjs-client: its framing cost would be the load generators' to carry, and a raw
 * socket can be cut without a close frame (the vanishers, the fault tests). What a frame means is the caller's.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Pool, request, type Dispatcher } from 'undici';
import WebSocket from 'ws';
import type { ServerFrame, Session, WelcomeFrame } from '@messaging-server/protocol';

/** How frames travel on the socket: one JSON frame per message (raw), or SockJS's `a[...]` arrays. */
export type Framing = 'raw' | 'sockjs';

export interface ConnectRequest {
  userId: string;
  /** Nodes the gateway should not allocate (sent only when there is at least one). */
  avoid?: readonly string[] | undefined;
  /** v1.2 placement hint: the room the user will join. */
  room?: string | undefined;
}

export interface ConnectOptions {
  /** A keep-alive pool to the gateway (gatewayPool): the load generators' many calls; otherwise undici's global agent. */
  pool?: Dispatcher;
  /** Gives up (rejects) when no full answer came within this; undici's own timeouts when absent. */
  timeoutMs?: number;
}

export interface ConnectAnswer {
  status: number;
  /** The body as received. */
  text: string;
  /** From the call to the whole body, ms. */
  ms: number;
}

/** A keep-alive connection pool to one gateway: undici's `request` on a pool is several times faster than fetch. */
export function gatewayPool(gatewayUrl: string, connections: number): Pool {
  return new Pool(gatewayUrl, { connections, keepAliveTimeout: 30_000 });
}

/** POST /connect. Any HTTP status resolves; a network failure or a timeout rejects. */
export async function postConnect(gatewayUrl: string, req: ConnectRequest, options: ConnectOptions = {}): Promise<ConnectAnswer> {
  const started = performance.now();
  const body = JSON.stringify({
    userId: req.userId,
    ...(req.avoid !== undefined && req.avoid.length > 0 ? { avoid: req.avoid } : {}),
    ...(req.room !== undefined ? { room: req.room } : {}),
  });
  const res = await request(`${gatewayUrl.replace(/\/$/, '')}/connect`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    ...(options.pool ? { dispatcher: options.pool } : {}),
    ...(options.timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(options.timeoutMs) }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, text, ms: performance.now() - started };
}

/** POST /connect for a session; anything but 200 rejects with the status and the start of the body. */
export async function connectSession(gatewayUrl: string, req: ConnectRequest, options: ConnectOptions = {}): Promise<Session & { nodeId: string }> {
  const answer = await postConnect(gatewayUrl, req, options);
  if (answer.status !== 200) throw new Error(`/connect for ${req.userId} answered ${String(answer.status)}: ${answer.text.slice(0, 200)}`);
  return JSON.parse(answer.text) as Session & { nodeId: string };
}

/**
 * The URL of a socket under `address` (a node's listeningAddress, or any SockJS-style server's base): the raw
 * transport at `<address>/websocket`, or SockJS's websocket transport at `<address>/<server>/<session>/websocket`.
 */
export function socketUrl(address: string, query: Record<string, string>, framing: Framing = 'raw'): string {
  const base = address.replace(/^http/, 'ws').replace(/\/$/, '');
  const path = framing === 'raw' ? '/websocket' : `/${String(Math.floor(Math.random() * 1000)).padStart(3, '0')}/${randomBytes(6).toString('hex')}/websocket`;
  const url = new URL(`${base}${path}`);
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  return url.toString();
}

export interface SessionSocketOptions {
  framing?: Framing;
  /** Opt in to receipts (contract v1.2): delivered messages carry a seq, and acks wait for the recipient's receipt. */
  receipts?: boolean;
  handshakeTimeoutMs?: number;
}

/** A websocket without compression (a load generator's cost, and the nodes do not offer it either). */
export function openSocket(url: string, handshakeTimeoutMs = 15_000): WebSocket {
  return new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: handshakeTimeoutMs });
}

/** Opens the socket of a session that /connect gave `session.userId` (or `userId`, when the session is a raw answer). */
export function openSession(session: Pick<Session, 'listeningAddress' | 'listeningKey'> & { userId: string }, options: SessionSocketOptions = {}): WebSocket {
  const query: Record<string, string> = { userId: session.userId, listeningKey: session.listeningKey };
  if (options.receipts === true) query['receipts'] = '1';
  return openSocket(socketUrl(session.listeningAddress, query, options.framing), options.handshakeTimeoutMs);
}

/** The frames (as JSON text) in one websocket message: the message itself (raw); SockJS's `a` array, while o, h and c carry none. */
export function frameTexts(data: string, framing: Framing): string[] {
  if (framing === 'raw') return [data];
  return data.charCodeAt(0) === 97 /* a */ ? (JSON.parse(data.slice(1)) as string[]) : [];
}

/** One frame (JSON text) as one websocket message. */
export function encodeFrame(text: string, framing: Framing): string {
  return framing === 'raw' ? text : JSON.stringify([text]);
}

/**
 * Resolves once `handle` calls its `ready` for a message; rejects, and cuts the socket, on an error, a close, or no
 * readiness within `timeoutMs`. `handle` keeps receiving every message after that. The socket's error events are
 * taken here for its whole life (its close follows them), so a caller listens to `close`.
 */
export function whenReady(ws: WebSocket, handle: (data: string, ready: () => void) => void, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`no welcome within ${String(timeoutMs / 1000)} s`)), timeoutMs);
    ws.on('error', fail);
    ws.on('close', (code: number) => fail(new Error(`closed (${String(code)}) before welcome`)));
    const ready = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve();
    };
    ws.on('message', (data: Buffer) => handle(data.toString(), ready));
  });
}

/** Resolves with our node's welcome; `onFrame` gets every frame, the welcome included, parsed as T. */
export async function whenWelcomed<T extends { type: string } = ServerFrame>(ws: WebSocket, framing: Framing, onFrame: (frame: T) => void = () => undefined, timeoutMs?: number): Promise<WelcomeFrame> {
  let welcome: WelcomeFrame | undefined;
  await whenReady(
    ws,
    (data, ready) => {
      for (const text of frameTexts(data, framing)) {
        const frame = JSON.parse(text) as T;
        if (frame.type === 'welcome') {
          welcome = frame as unknown as WelcomeFrame;
          ready();
        }
        onFrame(frame);
      }
    },
    timeoutMs,
  );
  return welcome as WelcomeFrame;
}

/** Closes `ws` (with `code`, if given) and waits for its close; cuts it after `timeoutMs` without one. */
export function closeSocket(ws: WebSocket, code?: number, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, timeoutMs);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close(code);
  });
}
