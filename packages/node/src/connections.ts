import type { Logger, SessionStore } from '@messaging-server/core';
import type { ClientConnection, ClosedBy } from './client-connection.js';
import { ClientSession, type SessionCounters, type SessionLimits } from './client-session.js';
import type { ConnectionTable } from './connection-table.js';
import type { Departures } from './departures.js';
import type { Handshaker } from './handshake.js';

/** What a receipts connection's unconfirmed messages become when it ends (see Connections.unconfirmedFate). */
export type UnconfirmedFate = 'redeliver' | 'written' | 'gone';

export interface ConnectionsDeps {
  nodeId: string;
  table: ConnectionTable;
  handshaker: Handshaker;
  sessions: SessionStore;
  limits: SessionLimits;
  counters: SessionCounters;
  /** Frames a connection may send before its welcome; more closes it (4504). */
  maxEarlyFrames: number;
  idleTimeoutSeconds: number;
  /** Users moving away (v1.1) and how long they stay moving; undefined with a resume window of 0. */
  departures: Departures | undefined;
  resumeWindowMs: number;
  log: Logger;
  /** A frame on an open connection. */
  onFrame(session: ClientSession, text: string): void;
  /** v1.2: a connection with receipts on ended; `fate` says what its unconfirmed messages become. */
  connectionLeft(session: ClientSession, fate: UnconfirmedFate): void;
  /** v1.2: the user's connection ended and the user is moving (or was replaced): its rooms keep it. */
  userMoving?(session: ClientSession): void;
  /** v1.2: the user left (its own clean close or a terminal close, not a move or a replacement): leaves its rooms. */
  userLeft?(userId: string): void;
  /** Right after the welcome frame: pending messages and registration with the keeper. */
  onWelcome(session: ClientSession): void;
}

/**
 * A connection's life on this node, from its first byte to its close: the handshake, the welcome, frames, idle
 * timeouts, and the session delete when it ends.
 */
export class Connections {
  /** Session writes (deletes, moving marks) of closed connections still in flight: a drain waits for them. */
  readonly sessionWrites = new Set<Promise<unknown>>();

  constructor(private readonly deps: ConnectionsDeps) {}

  accept(conn: ClientConnection): void {
    try {
      this.setUp(conn);
    } catch (error) {
      this.deps.log.error({ err: error }, 'connection setup failed');
    }
  }

  /** Sends the welcome and hands the connection what was waiting for it (see Handshaker). */
  welcome(session: ClientSession): void {
    const { nodeId, log } = this.deps;
    const early = session.open();
    session.send({ type: 'welcome', userId: session.userId, nodeId });
    log.debug({ userId: session.userId }, 'client connected');
    this.deps.onWelcome(session);
    for (const text of early) {
      if (!session.isOpen) break;
      this.deps.onFrame(session, text);
    }
  }

  /** Closes connections that went silent (no frame, SDK pings included). */
  closeIdle(now: number): void {
    if (this.deps.idleTimeoutSeconds <= 0) return;
    const horizon = now - this.deps.idleTimeoutSeconds * 1000;
    for (const session of this.deps.table.open()) {
      if (session.lastActivity < horizon) {
        this.deps.log.info({ userId: session.userId }, 'closing idle connection');
        session.close('idle_timeout');
      }
    }
  }

  private setUp(conn: ClientConnection): void {
    const session = new ClientSession(conn, this.deps.limits, this.deps.counters, this.deps.log);
    // The first client frame can arrive in the same tick as the connection: listeners go on first.
    conn.listen(
      (text) => this.onData(session, text),
      (closedBy) => {
        try {
          this.onClose(session, closedBy);
        } catch (error) {
          this.deps.log.error({ userId: session.userId, err: error }, 'close handler failed');
        }
      },
    );
    this.deps.handshaker.run(session);
  }

  private onData(session: ClientSession, text: string): void {
    session.lastActivity = Date.now();
    try {
      if (session.state === 'handshaking') {
        if (!session.holdEarly(text, this.deps.maxEarlyFrames)) session.close('protocol_violation');
      } else if (session.isOpen) {
        this.deps.onFrame(session, text);
      }
    } catch (error) {
      this.deps.log.error({ userId: session.userId, err: error }, 'frame handler failed');
    }
  }

  private onClose(session: ClientSession, closedBy: ClosedBy): void {
    const wasOpen = session.markClosed();
    const { table, log } = this.deps;
    table.remove(session);
    if (wasOpen) log.debug({ userId: session.userId, closedBy }, 'client disconnected');
    // Only a session this connection acked is its to change; a newer session keeps its place (the key differs).
    if (!session.record || table.isHandshakeInProgress(session)) return;
    const moving = this.isMoving(session, closedBy);
    const write = moving ? this.markMoving(session) : this.deleteSession(session);
    // v1.2: a member that moves stays in its rooms; their homes hold for it (and take back what it left unconfirmed).
    if (moving || session.replaced) this.deps.userMoving?.(session);
    if (session.receipts) this.deps.connectionLeft(session, this.unconfirmedFate(session, closedBy, moving));
    if (!moving && !session.replaced) this.deps.userLeft?.(session.userId);
    this.sessionWrites.add(write);
    void write.finally(() => this.sessionWrites.delete(write));
  }

  /**
   * v1.1: a user whose connection ended without its own clean close is moving: the network dropped it, or this
   * node closed it with a recoverable code (a drain, an idle timeout). A close frame from the client, or a
   * terminal close, means it left.
   */
  private isMoving(session: ClientSession, closedBy: ClosedBy): boolean {
    if (this.deps.departures === undefined || closedBy === 'client') return false;
    return closedBy === 'network' || session.closedForMove;
  }

  /**
   * v1.2: what a receipts connection's unconfirmed messages become. Delivered again when the user is moving or was
   * replaced; with no resume window (v1) nothing can be delivered again, so what was written counts as handed over,
   * v1's ack; after the client's clean close or a terminal close, PEER_UNAVAILABLE.
   */
  private unconfirmedFate(session: ClientSession, closedBy: ClosedBy, moving: boolean): UnconfirmedFate {
    if (moving || (this.deps.departures !== undefined && session.replaced)) return 'redeliver';
    const wouldMove = closedBy === 'network' || session.closedForMove || session.replaced;
    return this.deps.departures === undefined && closedBy !== 'client' && wouldMove ? 'written' : 'gone';
  }

  private deleteSession(session: ClientSession): Promise<unknown> {
    return this.deps.sessions.deleteIfMatches(session.userId, session.key).catch((error: unknown) => {
      this.deps.log.warn({ userId: session.userId, err: error }, 'session delete failed');
    });
  }

  /** The session stays for the window, marked moving, so every node holds what is sent to the user meanwhile. */
  private markMoving(session: ClientSession): Promise<unknown> {
    const { departures, resumeWindowMs, sessions, log } = this.deps;
    departures?.mark(session.userId);
    const movedAt = new Date().toISOString();
    const ttlSeconds = Math.ceil(resumeWindowMs / 1000) + 1;
    return sessions
      .updateIfMatches(session.userId, session.key, (record) => ({ ...record, moving: true, movedAt }), ttlSeconds)
      .catch((error: unknown) => log.warn({ userId: session.userId, err: error }, 'session moving mark failed'));
  }
}
