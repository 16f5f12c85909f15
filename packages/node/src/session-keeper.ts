import type { Logger, SessionStore } from '@messaging-server/core';
import type { SessionRecord } from '@messaging-server/protocol';
import { secretsEqual } from './secure-compare.js';

/** What the keeper needs of a live connection; the node's client objects carry these fields. */
export interface KeptConnection {
  readonly userId: string;
  readonly key: string;
  /** The session this connection acked; absent until its handshake wrote it. */
  readonly record?: SessionRecord | undefined;
  readonly state: string;
  nextReassertAt: number;
  reasserting: boolean;
}

export interface SessionKeeperOptions<C extends KeptConnection> {
  sessions: SessionStore;
  nodeId: string;
  sessionTtlSeconds: number;
  log: Logger;
  /** Another /connect took the session over (its key changed): the connection must go (4503). */
  onReplaced(connection: C): void;
  /** Store calls in flight at once. */
  concurrency?: number;
}

/**
 * Keeps every live connection's session in the store, well before its TTL runs out: every TTL/3 it is touched if
 * still this connection's, written back if missing (memcached restarted empty), and reported replaced if another
 * key took its place. Due connections are collected once per tick and worked off by a small pool, so a large node
 * re-asserts thousands of sessions per interval without flooding the store.
 */
export class SessionKeeper<C extends KeptConnection> {
  readonly intervalMs: number;
  private readonly concurrency: number;
  private running = 0;
  private queue: C[] = [];
  private next = 0;
  private stopped = false;
  /**
   * A record was missing: the store most likely restarted empty, and every other session here is missing too. Until
   * each is written back, users elsewhere that send to them get PEER_UNAVAILABLE, so the next round takes them all
   * at once instead of each at its own time in the interval (found by `make chaos`: up to 10 s of such answers).
   */
  private refillAll = false;
  /** The round being worked off is such a refill (its own missing records ask for no other). */
  private refilling = false;

  constructor(private readonly options: SessionKeeperOptions<C>) {
    this.intervalMs = (options.sessionTtlSeconds * 1000) / 3;
    this.concurrency = options.concurrency ?? 16;
  }

  /** How often the owner should call `tick`. */
  get tickMs(): number {
    return Math.max(100, Math.min(1000, this.intervalMs / 4));
  }

  /** A fresh connection's first re-assertion, spread over the interval so a burst of handshakes does not recur in step. */
  schedule(connection: C): void {
    connection.nextReassertAt = Date.now() + this.intervalMs * (0.5 + Math.random() * 0.5);
  }

  tick(connections: Iterable<C>): void {
    if (this.stopped) return;
    if (this.next >= this.queue.length) {
      const now = Date.now();
      const all = this.refillAll;
      this.refillAll = false;
      this.refilling = all;
      this.queue = [];
      this.next = 0;
      for (const connection of connections) {
        if (connection.reasserting || (!all && connection.nextReassertAt > now)) continue;
        connection.reasserting = true;
        this.queue.push(connection);
      }
    }
    while (this.running < this.concurrency && this.next < this.queue.length) {
      const connection = this.queue[this.next++] as C;
      this.running += 1;
      void this.reassert(connection).finally(() => {
        this.running -= 1;
        if (!this.stopped && this.next < this.queue.length) this.tick([]);
      });
    }
  }

  stop(): void {
    this.stopped = true;
  }

  private async reassert(connection: C): Promise<void> {
    const { sessions, sessionTtlSeconds, nodeId, log } = this.options;
    const record = connection.record;
    let retryMs = this.intervalMs;
    try {
      if (!record) return;
      const current = await sessions.get(connection.userId);
      if (connection.state !== 'open') return;
      if (!current) {
        const created = await sessions.create({ ...record, acked: true }, sessionTtlSeconds);
        if (!created) retryMs = 1000;
        else log.info({ userId: connection.userId }, 'session re-created from live connection');
        if (!this.refilling) this.refillAll = true;
      } else if (secretsEqual(current.listeningKey, connection.key)) {
        if (!current.acked || current.nodeId !== nodeId) {
          // A /connect between the read and this write would otherwise be overwritten with the old key.
          const acked = { ...record, acked: true };
          if (!(await sessions.updateIfMatches(acked.userId, acked.listeningKey, () => acked, sessionTtlSeconds))) retryMs = 1000;
        }
        else if (!(await sessions.touch(connection.userId, sessionTtlSeconds))) retryMs = 1000;
      } else {
        this.options.onReplaced(connection);
      }
    } catch (error) {
      log.warn({ userId: connection.userId, err: error }, 'session re-assertion failed');
      // Retry well inside the interval: a memcached that comes back empty must hold every live session again
      // within TTL/3 (the contract), counted from its return, not from this failure.
      retryMs = Math.min(this.intervalMs / 3, 5000);
    } finally {
      connection.nextReassertAt = Date.now() + retryMs;
      connection.reasserting = false;
    }
  }
}
