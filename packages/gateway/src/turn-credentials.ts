import { createHmac } from 'node:crypto';
import type { IceServer } from '@messaging-server/protocol';

export interface IceServerOptions {
  /** stun:, stuns:, turn: and turns: URLs (MSG_TURN_URLS). */
  urls: readonly string[];
  /** coturn's `static-auth-secret` (MSG_TURN_SECRET); TURN URLs need it. */
  secret?: string | undefined;
  /** Lifetime of the credentials (MSG_TURN_TTL_SECONDS). */
  ttlSeconds: number;
  now?: () => number;
}

/**
 * Time-limited TURN credentials in the TURN REST API scheme (draft-uberti-behave-turn-rest), which coturn checks
 * with `use-auth-secret`: the username carries its own expiry, and only the holder of the shared secret can sign
 * one. The TURN server needs no per-user state, and a leaked credential stops working at its expiry.
 */
export function turnCredentials(secret: string, userId: string, expiresAtUnix: number): { username: string; credential: string } {
  const username = `${String(expiresAtUnix)}:${userId}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential };
}

/**
 * The `iceServers` of one /connect answer: STUN URLs as they are, TURN URLs with fresh credentials for this user.
 * Undefined when the gateway has none configured, so the answer stays as it was.
 */
export function iceServersFor(userId: string, options: IceServerOptions): IceServer[] | undefined {
  if (options.urls.length === 0) return undefined;
  const stun = options.urls.filter((url) => url.startsWith('stun'));
  const turn = options.urls.filter((url) => url.startsWith('turn'));
  const servers: IceServer[] = [];
  if (stun.length > 0) servers.push({ urls: [...stun] });
  if (turn.length > 0 && options.secret !== undefined) {
    const now = options.now ?? Date.now;
    const expiresAt = Math.floor(now() / 1000) + options.ttlSeconds;
    servers.push({ urls: [...turn], ...turnCredentials(options.secret, userId, expiresAt) });
  }
  return servers;
}
