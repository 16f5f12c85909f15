import SockJS from 'sockjs-client';
import type { ServerFrame, Session } from '@messaging-server/protocol';
import { waitFor } from './wait-for.js';

export interface ConnectAnswer {
  status: number;
  body: unknown;
}

/** POST /connect as JSON (or as the seed's form), returning status and parsed body. */
export interface ConnectRequestOptions {
  form?: boolean;
  avoid?: string[];
  /** v1.2 placement hint. */
  room?: string;
}

export async function postConnect(gatewayUrl: string, userId: string, options: ConnectRequestOptions = {}): Promise<ConnectAnswer> {
  const res = await fetch(`${gatewayUrl}/connect`, {
    method: 'POST',
    headers: { 'content-type': options.form ? 'application/x-www-form-urlencoded' : 'application/json' },
    body: options.form
      ? `userId=${encodeURIComponent(userId)}${options.room === undefined ? '' : `&room=${encodeURIComponent(options.room)}`}`
      : JSON.stringify({ userId, ...(options.avoid ? { avoid: options.avoid } : {}), ...(options.room === undefined ? {} : { room: options.room }) }),
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, body: await res.json() };
}

export async function requestSession(gatewayUrl: string, userId: string, options: ConnectRequestOptions = {}): Promise<Session> {
  const answer = await postConnect(gatewayUrl, userId, options);
  if (answer.status !== 200) throw new Error(`/connect for ${userId} answered ${String(answer.status)}: ${JSON.stringify(answer.body)}`);
  return answer.body as Session;
}

/** The slice of the browser WebSocket API that sockjs-client implements and this client uses. */
export interface SockJsSocket {
  onopen: (() => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  send(data: string): void;
  close(): void;
}

/**
 * A real sockjs-client connection that records every frame and its close, for assertions. `frames` holds parsed
 * server frames in arrival order; `raw` the text as received.
 */
export interface TestSocketOptions {
  keyParam?: 'listeningKey' | 'token';
  key?: string;
  address?: string;
  transports?: string[];
  /** More of the SockJS URL's query, such as the opt-ins `coalesce=1` or `receipts=1`. */
  query?: Record<string, string>;
}

export class TestSocket {
  readonly frames: ServerFrame[] = [];
  readonly raw: string[] = [];
  closeEvent: { code: number; reason: string } | undefined;
  opened = false;
  private readonly socket: SockJsSocket;

  constructor(url: string, options: { transports?: string[] } = {}) {
    this.socket = new SockJS(url, undefined, options.transports ? { transports: options.transports } : {}) as unknown as SockJsSocket;
    this.socket.onopen = () => {
      this.opened = true;
    };
    this.socket.onmessage = (event) => {
      const text = String(event.data);
      this.raw.push(text);
      try {
        this.frames.push(JSON.parse(text) as ServerFrame);
      } catch {
        // Keep it in `raw`; a test that cares asserts on that.
      }
    };
    this.socket.onclose = (event) => {
      this.closeEvent = { code: event.code, reason: event.reason };
    };
  }

  /** Opens SockJS for a session from /connect, with `listeningKey` (or the seed's `token` alias). */
  static forSession(session: Session, options: TestSocketOptions = {}): TestSocket {
    const url = new URL(options.address ?? session.listeningAddress);
    url.searchParams.set('userId', session.userId);
    url.searchParams.set(options.keyParam ?? 'listeningKey', options.key ?? session.listeningKey);
    for (const [name, value] of Object.entries(options.query ?? {})) url.searchParams.set(name, value);
    return new TestSocket(url.toString(), options.transports ? { transports: options.transports } : {});
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  close(): void {
    this.socket.close();
  }

  async waitForFrame<T extends ServerFrame = ServerFrame>(predicate: (frame: ServerFrame) => boolean, timeoutMs = 10_000, what = 'a frame'): Promise<T> {
    return waitFor(() => this.frames.find(predicate) as T | undefined, { timeoutMs, what });
  }

  async welcomed(timeoutMs = 10_000): Promise<ServerFrame> {
    return waitFor(
      () => {
        if (this.closeEvent) throw new Error(`closed with ${String(this.closeEvent.code)} ${this.closeEvent.reason} before welcome`);
        return this.frames.find((f) => f.type === 'welcome');
      },
      { timeoutMs, what: 'welcome' },
    );
  }

  async closed(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    return waitFor(() => this.closeEvent, { timeoutMs, what: 'close' });
  }

  framesOfType<K extends ServerFrame['type']>(type: K): Extract<ServerFrame, { type: K }>[] {
    return this.frames.filter((f): f is Extract<ServerFrame, { type: K }> => f.type === type);
  }
}

/** /connect + SockJS open + welcome, for a user that should simply be online. */
export async function connectUser(gatewayUrl: string, userId: string): Promise<{ session: Session; socket: TestSocket }> {
  const session = await requestSession(gatewayUrl, userId);
  const socket = TestSocket.forSession(session);
  await socket.welcomed();
  return { session, socket };
}
