import type { Logger, SessionStore } from '@messaging-server/core';
import { isValidUserId, SOCKJS_QUERY_OPTIONS, type CloseReason, type SessionRecord } from '@messaging-server/protocol';
import type { ClientSession } from './client-session.js';
import type { ConnectionTable } from './connection-table.js';
import { secretsEqual } from './secure-compare.js';

/** Query parameter set by the node itself (never trusted from the client) on requests whose Origin is not allowed. */
export const ORIGIN_DENIED_PARAM = 'msg_origin_denied';
/** A handshake normally takes one or two store calls; one stuck longer than this is refused (4002, recoverable). */
export const HANDSHAKE_DEADLINE_MS = 10_000;

export interface HandshakeDeps {
  nodeId: string;
  sessions: SessionStore;
  table: ConnectionTable;
  /** 0: no limit. */
  maxConnections: number;
  sessionTtlSeconds: number;
  /** v1.2's MSG_MAX_UNCONFIRMED, for connections opened with `receipts=1`. */
  maxUnconfirmed: number;
  /** False once the node drains or closes: new connections get 4000. */
  accepting(): boolean;
  log: Logger;
  /** Counts each handshake's result: `accepted` or the close reason. */
  count(result: CloseReason | 'accepted'): void;
  /** Called synchronously right after the session became the user's open connection: welcome and what follows. */
  welcome(session: ClientSession): void;
}

/**
 * The contract's handshake for one connection: a session for that userId with this key, assigned to this node, not
 * yet acked by another connection. It then marks the session acked in the store and hands the connection to
 * `welcome`. Otherwise the connection is closed with the contract's code. The node's state can change at every
 * store call, so each one is followed by `stillWanted`.
 */
export class Handshaker {
  constructor(private readonly deps: HandshakeDeps) {}

  /** Runs the handshake; never rejects (a store failure refuses the connection with 4002). */
  run(session: ClientSession): void {
    this.deps.table.beginHandshake(session);
    this.handshake(session).catch((error: unknown) => {
      this.deps.log.error({ userId: session.userId, err: error }, 'handshake failed');
      this.refuse(session, 'store_unavailable');
    });
  }

  /** Refuses handshakes stuck on the store longer than HANDSHAKE_DEADLINE_MS. */
  expireStuck(now: number): void {
    for (const session of [...this.deps.table.handshakes()]) {
      if (session.state === 'handshaking' && now - session.openedAt > HANDSHAKE_DEADLINE_MS) {
        this.deps.log.warn({ userId: session.userId || undefined }, 'handshake timed out');
        this.refuse(session, 'store_unavailable');
      }
    }
  }

  private async handshake(session: ClientSession): Promise<void> {
    const refusal = this.admit(session);
    if (refusal) return this.refuse(session, refusal);
    if (!(await this.claim(session))) return;
    this.deps.table.endHandshake(session);
    if (session.isClosed) {
      // Closed while the ack was written: the session it acked goes with it.
      await this.deps.sessions.deleteIfMatches(session.userId, session.key).catch(() => undefined);
      return;
    }
    if (!this.stillWanted(session)) return;
    this.deps.table.get(session.userId)?.replace();
    this.deps.table.promote(session);
    this.deps.count('accepted');
    this.deps.welcome(session);
  }

  /** What can be decided before any store call. */
  private admit(session: ClientSession): CloseReason | undefined {
    if (!this.deps.accepting()) return 'node_shutdown';
    const query = new URL(session.conn.url, 'http://node.invalid').searchParams;
    if (query.has(ORIGIN_DENIED_PARAM)) return 'origin_not_allowed';
    const { maxConnections, table } = this.deps;
    // The table already counts this handshake.
    if (maxConnections > 0 && table.openCount + table.handshakeCount > maxConnections) return 'node_full';
    const userId = query.get('userId') ?? '';
    const key = query.get('listeningKey') ?? query.get('token') ?? '';
    session.identify(isValidUserId(userId) ? userId : '', key);
    session.coalescesRefusals = query.get(SOCKJS_QUERY_OPTIONS.coalesce) === '1';
    if (query.get(SOCKJS_QUERY_OPTIONS.receipts) === '1') session.enableReceipts(this.deps.maxUnconfirmed);
    table.identified(session);
    if (!session.userId || !key) return 'invalid_credentials';
    return undefined;
  }

  /** `record` carries this connection's key: the store's compare-and-set matched it (in constant time). */
  private verify(session: ClientSession, record: SessionRecord): CloseReason | undefined {
    if (record.nodeId !== this.deps.nodeId) return 'wrong_node';
    if (this.keyAlreadyUsed(session, record)) return 'key_already_used';
    return undefined;
  }

  /** The key was taken by another connection: one racing in its handshake, one open here, or one before. */
  private keyAlreadyUsed(session: ClientSession, record: SessionRecord): boolean {
    const { table } = this.deps;
    if (table.isKeyClaimedByOther(session)) return true;
    const existing = table.get(session.userId);
    return existing ? secretsEqual(existing.key, session.key) : record.acked;
  }

  /**
   * One read and one compare-and-set: the record is checked inside the store's update, so the write is over exactly
   * the record verified, and a /connect that replaced it meanwhile keeps its newer session. The key counts as taken
   * from the moment it is verified, before the write, so a racing twin is refused. False when the connection was
   * refused (or went away).
   */
  private async claim(session: ClientSession): Promise<boolean> {
    let mismatch: CloseReason | undefined;
    let read = false;
    const ackIfValid = (record: SessionRecord): SessionRecord | undefined => {
      read = true;
      mismatch = this.verify(session, record);
      if (mismatch || this.unwanted(session)) return undefined;
      const acked: SessionRecord = { ...record, acked: true };
      session.claim(acked);
      return acked;
    };
    try {
      if (await this.deps.sessions.updateIfMatches(session.userId, session.key, ackIfValid, this.deps.sessionTtlSeconds)) return true;
    } catch (error) {
      session.claim(undefined);
      this.deps.log.warn({ userId: session.userId, err: error }, 'session claim failed');
      this.refuse(session, 'store_unavailable');
      return false;
    }
    session.claim(undefined);
    // Declined because the connection is no longer wanted: stillWanted says why.
    if (!this.stillWanted(session)) return false;
    // Not read: no record with this key. Read and valid, yet not written: replaced between the read and the write.
    this.refuse(session, !read ? 'invalid_credentials' : (mismatch ?? 'session_replaced'));
    return false;
  }

  /** Why the handshake should stop now: the connection closed, was replaced, or the node began to stop. */
  private unwanted(session: ClientSession): 'closed' | 'session_replaced' | 'node_shutdown' | undefined {
    if (session.isClosed) return 'closed';
    if (session.replaced) return 'session_replaced';
    return this.deps.accepting() ? undefined : 'node_shutdown';
  }

  /** After each store call: ends the handshake (refusing the connection where it is still open) if it is unwanted. */
  private stillWanted(session: ClientSession): boolean {
    const reason = this.unwanted(session);
    if (reason === 'closed') this.deps.table.endHandshake(session);
    else if (reason) this.refuse(session, reason);
    return reason === undefined;
  }

  private refuse(session: ClientSession, reason: CloseReason): void {
    this.deps.count(reason);
    this.deps.table.endHandshake(session);
    if (reason !== 'node_shutdown') this.deps.log.info({ userId: session.userId || undefined, reason }, 'handshake rejected');
    session.close(reason);
  }
}
