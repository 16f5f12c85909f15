import type { Logger, SessionStore } from '@messaging-server/core';
import type { ClientConnection } from './client-connection.js';
import { ClientSession, type SessionCounters, type SessionLimits } from './client-session.js';
import type { ConnectionTable } from './connection-table.js';
import type { Handshaker } from './handshake.js';

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
  log: Logger;
  /** A frame on an open connection. */
  onFrame(session: ClientSession, text: string): void;
  /** Right after the welcome frame: pending messages and registration with the keeper. */
  onWelcome(session: ClientSession): void;
}

/**
 * A connection's life on this node, from its first byte to its close: the handshake, the welcome, frames, idle
 * timeouts, and the session delete when it ends.
 */
export class Connections {
  /** Session deletes of closed connections still in flight: a drain waits for them. */
  readonly sessionDeletes = new Set<Promise<unknown>>();

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
      () => {
        try {
          this.onClose(session);
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

  private onClose(session: ClientSession): void {
    const wasOpen = session.markClosed();
    const { table, log } = this.deps;
    table.remove(session);
    if (wasOpen) log.debug({ userId: session.userId }, 'client disconnected');
    // A session this connection acked goes with it, unless a newer session took its place (deleteIfMatches).
    if (session.record && !table.isHandshakeInProgress(session)) {
      const deletion = this.deps.sessions.deleteIfMatches(session.userId, session.key).catch((error: unknown) => {
        log.warn({ userId: session.userId, err: error }, 'session delete failed');
      });
      this.sessionDeletes.add(deletion);
      void deletion.finally(() => this.sessionDeletes.delete(deletion));
    }
  }
}
