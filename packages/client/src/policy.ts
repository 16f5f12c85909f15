import {
  Backoff,
  CLOSE_CODES,
  closeReasonOf,
  isRecoverableClose,
  isTerminalClose,
  type CloseReason,
} from '@messaging-server/protocol';
import { MessagingError } from './errors.js';

/**
 * Reconnect settings, named and shaped as socket.io's Manager options, so they read as users expect. Attempts count
 * from the last welcome: the retries of a first connection count too, as in socket.io.
 */
export interface ReconnectOptions {
  /** Reconnect at all. Default true. With false, the first failure closes the client (reason `reconnection_disabled`). */
  reconnection: boolean;
  /** Attempts in a row before giving up with `reconnect_failed`. Default Infinity. */
  reconnectionAttempts: number;
  /** Delay ceiling of the first attempt, in ms; it doubles per attempt. Default 250. */
  reconnectionDelay: number;
  /** Largest delay ceiling, in ms. Default 10 000. */
  reconnectionDelayMax: number;
  /**
   * Random share of each delay, 0–1. Default 1, "full jitter": uniform in [0, ceiling), so a fleet of clients that
   * lost the same node does not come back in lockstep. 0.5 gives [ceiling/2, ceiling); socket.io's 0.5 (its default)
   * spreads ± around the ceiling instead, so the same setting here waits a quarter less on average.
   */
  randomizationFactor: number;
  /** Delay ceiling after a drain (4000) of a connection that had been working, in ms. Default 250. */
  reconnectionDelayAfterDrain: number;
}

export const DEFAULT_RECONNECT: Readonly<ReconnectOptions> = Object.freeze({
  reconnection: true,
  reconnectionAttempts: Infinity,
  reconnectionDelay: 250,
  reconnectionDelayMax: 10_000,
  randomizationFactor: 1,
  reconnectionDelayAfterDrain: 250,
});

/** The delays of one client, on the shared retry schedule (`Backoff` from the protocol package). */
export interface ReconnectSchedule {
  /** Attempt n after any failure. */
  readonly backoff: Backoff;
  /** The first attempt after a drain. */
  readonly drain: Backoff;
}

export function reconnectSchedule(
  options: Partial<ReconnectOptions> = {},
  random: () => number = Math.random,
): ReconnectSchedule {
  const o = { ...DEFAULT_RECONNECT, ...options };
  return {
    backoff: new Backoff({
      initialMs: o.reconnectionDelay,
      maxMs: o.reconnectionDelayMax,
      jitter: o.randomizationFactor,
      random,
    }),
    drain: new Backoff({ initialMs: o.reconnectionDelayAfterDrain, maxMs: o.reconnectionDelayAfterDrain, random }),
  };
}

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
 * Why the client stopped for good. A contract close reason (4500–4999); `connect_rejected` for a 4xx from
 * `/connect`; `connect_timeout` when no first welcome came in time; `reconnect_failed` after `reconnectionAttempts`
 * failed attempts; `reconnection_disabled` on the first failure with `reconnection: false`; `client` when the
 * application called `close()`.
 */
export type StopReason =
  | CloseReason
  | 'connect_rejected'
  | 'connect_timeout'
  | 'reconnect_failed'
  | 'reconnection_disabled'
  | 'client'
  | 'unknown_close';

const DEFAULT_SCHEDULE = reconnectSchedule();

/**
 * The reconnect policy as a pure function of the failure and the attempt number, so every branch is testable
 * without sockets or timers. `attempt` counts consecutive failed attempts since the last welcome (0 for the first
 * failure after a working connection). Whether to reconnect at all, and how often, is the client's business.
 */
export function nextAction(
  event: ReconnectEvent | number,
  attempt: number,
  schedule: ReconnectSchedule = DEFAULT_SCHEDULE,
): ReconnectAction {
  const e: ReconnectEvent = typeof event === 'number' ? { kind: 'close', code: event } : event;
  const backoff = (avoid: string[] = []): ReconnectAction => ({
    reconnect: true,
    delayMs: schedule.backoff.delay(attempt),
    avoid,
  });
  const avoidingNode = (nodeId: string | undefined): ReconnectAction => backoff(nodeId === undefined ? [] : [nodeId]);
  switch (e.kind) {
    case 'close':
      if (isTerminalClose(e.code)) {
        return { reconnect: false, reason: closeReasonOf(e.code) ?? 'unknown_close', code: e.code };
      }
      if (isRecoverableClose(e.code)) {
        // The gateway stops picking a draining node at once, so no avoid list is needed; come back quickly, but
        // fall back to the normal backoff if draining closes keep coming.
        if (e.code === CLOSE_CODES.node_shutdown && attempt === 0) {
          return { reconnect: true, delayMs: schedule.drain.delay(0), avoid: [] };
        }
        // A full node may still look roomy in a gateway's load view for up to a second: steer away from it.
        if (e.code === CLOSE_CODES.node_full) return avoidingNode(e.nodeId);
        return backoff();
      }
      // Any other code (1006, sockjs-client's 2000 "all transports failed", 1000 without a reason…) means the
      // node went away without telling us why: treat it as unreachable.
      return avoidingNode(e.nodeId);
    case 'network':
      return avoidingNode(e.nodeId);
    case 'http':
      if (e.status === 429 || e.status >= 500) return backoff();
      return { reconnect: false, reason: 'connect_rejected', code: e.status };
    case 'gateway-unreachable':
      return backoff();
  }
}

/** The close code or HTTP status a failure carried, for `closed` events. */
export function failureCode(event: ReconnectEvent): number | undefined {
  if (event.kind === 'close') return event.code;
  if (event.kind === 'http') return event.status;
  return undefined;
}

/** An error for a failure that came without one (a close after a working connection, a ping timeout). */
export function failureError(event: ReconnectEvent): MessagingError {
  if (event.kind === 'close') {
    return new MessagingError('CONNECTION_LOST', `connection closed with ${String(event.code)}`, { closeCode: event.code });
  }
  return new MessagingError('CONNECTION_LOST', 'the node stopped answering');
}
