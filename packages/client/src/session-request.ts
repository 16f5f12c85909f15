import { SOCKJS_QUERY_OPTIONS, type ConnectResponse, type ErrorBody, type IceServer } from '@messaging-server/protocol';
import { MessagingError, type MessagingErrorCode } from './errors.js';
import type { ReconnectEvent } from './policy.js';
import type { Clock } from './transport.js';

export interface SessionRequest {
  gatewayUrl: string;
  userId: string;
  avoid: readonly string[];
  room: string | undefined;
  token: string | undefined;
  fetch: typeof fetch;
  clock: Clock;
  timeoutMs: number;
  /** Aborts the request when the client closes meanwhile. */
  abort: AbortController;
}

export type SessionResult =
  | { ok: true; session: ConnectResponse }
  | { ok: false; event: ReconnectEvent; error: MessagingError };

/** One `POST /connect`. Never throws: every failure comes back as the event the reconnect policy decides on. */
export async function requestSession(request: SessionRequest): Promise<SessionResult> {
  const body: { userId: string; avoid?: string[]; room?: string } = { userId: request.userId };
  if (request.avoid.length > 0) body.avoid = [...request.avoid];
  if (request.room !== undefined) body.room = request.room;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (request.token !== undefined) headers['authorization'] = `Bearer ${request.token}`;
  const timer = request.clock.setTimeout(() => request.abort.abort(), request.timeoutMs);
  let response: Response;
  let payload: unknown;
  try {
    response = await request.fetch(connectUrl(request.gatewayUrl), {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal: request.abort.signal,
    });
    payload = await response.json().catch(() => undefined);
  } catch (error) {
    return {
      ok: false,
      event: { kind: 'gateway-unreachable' },
      error: new MessagingError('GATEWAY_UNREACHABLE', `gateway unreachable: ${String(error)}`),
    };
  } finally {
    request.clock.clearTimeout(timer);
  }
  if (!response.ok) {
    const code = errorCodeOf(payload);
    const message = errorMessageOf(payload) ?? `/connect answered ${String(response.status)}`;
    return {
      ok: false,
      event: { kind: 'http', status: response.status, code },
      error: new MessagingError(code ?? 'HTTP_ERROR', message, { status: response.status }),
    };
  }
  const session = payload as Partial<ConnectResponse> | undefined;
  if (typeof session?.listeningAddress !== 'string' || typeof session.listeningKey !== 'string') {
    return {
      ok: false,
      event: { kind: 'http', status: 502 },
      error: new MessagingError('INTERNAL', '/connect answered without a session', { status: response.status }),
    };
  }
  const iceServers = iceServersOf(session.iceServers);
  const { iceServers: _ignored, ...rest } = session as ConnectResponse;
  return { ok: true, session: iceServers === undefined ? rest : { ...rest, iceServers } };
}

function connectUrl(gatewayUrl: string): string {
  return `${gatewayUrl.replace(/\/+$/, '')}/connect`;
}

/** Keeps only well-formed entries, so a malformed field can never break RTCPeerConnection's constructor. */
function iceServersOf(value: unknown): IceServer[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const servers: IceServer[] = [];
  for (const entry of value as Partial<IceServer>[]) {
    const urls = Array.isArray(entry?.urls) ? entry.urls.filter((u): u is string => typeof u === 'string') : [];
    if (urls.length === 0) continue;
    const server: IceServer = { urls };
    if (typeof entry.username === 'string') server.username = entry.username;
    if (typeof entry.credential === 'string') server.credential = entry.credential;
    servers.push(server);
  }
  return servers;
}

function errorCodeOf(payload: unknown): MessagingErrorCode | undefined {
  const code = (payload as Partial<ErrorBody> | undefined)?.error?.code;
  return typeof code === 'string' ? code : undefined;
}

function errorMessageOf(payload: unknown): string | undefined {
  const message = (payload as Partial<ErrorBody> | undefined)?.error?.message;
  return typeof message === 'string' ? message : undefined;
}

/** The node's SockJS URL for a session: its credentials and the opt-ins this SDK understands. */
export function sockjsUrl(listeningAddress: string, gatewayUrl: string, userId: string, listeningKey: string): URL {
  const url = new URL(listeningAddress, gatewayUrl);
  url.searchParams.set('userId', userId);
  url.searchParams.set('listeningKey', listeningKey);
  // The SDK reads `ids`, so one RATE_LIMITED error per burst answers its whole flood.
  url.searchParams.set(SOCKJS_QUERY_OPTIONS.coalesce, '1');
  return url;
}
