import { closeReasonOf, isRecoverableClose, isTerminalClose, type CloseReason } from '@messaging-server/protocol';

/**
 * The reconnect policy as a pure function, so every branch is testable without sockets or timers.
 *
 * `attempt` counts consecutive failed attempts since the last welcome (0 for the first failure after a working
 * connection). Delays use "full jitter": uniform in [0, min(maxMs, baseMs · 2^attempt)), so a fleet of clients that
 * lost the same node does not come back in lockstep.
 */
export interface BackoffOptions {
  /** First backoff ceiling. Default 250 ms. */
  baseMs: number;
  /** Largest backoff ceiling. Default 10 000 ms. */
  maxMs: number;
  /** Ceiling of the delay after a drain (4000) on a connection that had been working. Default 250 ms. */
  drainJitterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = Object.freeze({ baseMs: 250, maxMs: 10_000, drainJitterMs: 250 });

/** What ended a connection or a connection attempt. */
export type ReconnectEvent =
  /** The node closed the SockJS connection with this code (a contract code or any other). */
  | { kind: 'close'; code: number; nodeId?: string | undefined }
  /** The node could not be reached or stopped answering: transport failure, handshake or ping timeout. */
  | { kind: 'network'; nodeId?: string | undefined }
  /** `/connect` answered with an error status. */
  | { kind: 'http'; status: number; code?: string | undefined }
  /** `/connect` itself failed: gateway unreachable or request timed out. */
  | { kind: 'gateway-unreachable' };

export type ReconnectAction =
  | { reconnect: true; delayMs: number; avoid: string[] }
  | { reconnect: false; reason: StopReason; code?: number };

/**
 * Why the client stopped for good. A contract close reason (4500–4999), `connect_rejected` for a 4xx from
 * `/connect`, or `client` when the application called `close()`.
 */
export type StopReason = CloseReason | 'connect_rejected' | 'connect_timeout' | 'client' | 'unknown_close';

/** Upper bound of the full-jitter delay for this attempt. */
export function backoffCeiling(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const exponent = Math.min(Math.max(attempt, 0), 30);
  return Math.min(options.maxMs, options.baseMs * 2 ** exponent);
}

export function backoffDelay(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * backoffCeiling(attempt, options));
}

export function nextAction(
  event: ReconnectEvent | number,
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): ReconnectAction {
  const e: ReconnectEvent = typeof event === 'number' ? { kind: 'close', code: event } : event;
  const backoff = (avoid: string[] = []): ReconnectAction => ({
    reconnect: true,
    delayMs: backoffDelay(attempt, options, random),
    avoid,
  });
  switch (e.kind) {
    case 'close':
      if (isTerminalClose(e.code)) {
        return { reconnect: false, reason: closeReasonOf(e.code) ?? 'unknown_close', code: e.code };
      }
      if (isRecoverableClose(e.code)) {
        // The gateway stops picking a draining node at once, so no avoid list is needed; come back quickly, but
        // fall back to the normal backoff if draining closes keep coming.
        if (e.code === 4000 && attempt === 0) {
          return { reconnect: true, delayMs: Math.floor(random() * options.drainJitterMs), avoid: [] };
        }
        // A full node (4003) may still look roomy in a gateway's load view for up to a second: steer away from it.
        if (e.code === 4003) return backoff(e.nodeId === undefined ? [] : [e.nodeId]);
        return backoff();
      }
      // Any other code (1006, sockjs-client's 2000 "all transports failed", 1000 without a reason…) means the
      // node went away without telling us why: treat it as unreachable.
      return backoff(e.nodeId === undefined ? [] : [e.nodeId]);
    case 'network':
      return backoff(e.nodeId === undefined ? [] : [e.nodeId]);
    case 'http':
      if (e.status === 429 || e.status >= 500) return backoff();
      return { reconnect: false, reason: 'connect_rejected', code: e.status };
    case 'gateway-unreachable':
      return backoff();
  }
}
