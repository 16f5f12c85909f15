import type { ClientSession } from './client-session.js';
import { secretsEqual } from './secure-compare.js';

/**
 * Every connection of this node: the open ones by userId (at most one each) and by connection id, and those
 * still in their handshake. Only the node's lifecycle code adds, promotes and removes.
 */
export class ConnectionTable {
  readonly #open = new Map<string, ClientSession>();
  readonly #byCid = new Map<string, ClientSession>();
  readonly #handshaking = new Set<ClientSession>();
  /** Handshakes per userId, so isHandshaking is one lookup however many connections are opening. */
  readonly #handshakingUsers = new Map<string, number>();

  get openCount(): number {
    return this.#open.size;
  }

  get handshakeCount(): number {
    return this.#handshaking.size;
  }

  /** No connection at all, open or handshaking. */
  get empty(): boolean {
    return this.#open.size === 0 && this.#handshaking.size === 0;
  }

  /** The open connection of this user. */
  get(userId: string): ClientSession | undefined {
    return this.#open.get(userId);
  }

  has(userId: string): boolean {
    return this.#open.has(userId);
  }

  /** The open connection with this id (outcome reports name the sender's connection). */
  byCid(cid: string): ClientSession | undefined {
    return this.#byCid.get(cid);
  }

  open(): IterableIterator<ClientSession> {
    return this.#open.values();
  }

  /** v1.2: messages written to the open connections with receipts on and not confirmed yet (read when scraped). */
  get unconfirmedCount(): number {
    let count = 0;
    for (const session of this.#open.values()) count += session.receipts?.count ?? 0;
    return count;
  }

  handshakes(): IterableIterator<ClientSession> {
    return this.#handshaking.values();
  }

  /** A connection of this user is in its handshake: messages to the user wait for it. */
  isHandshaking(userId: string): boolean {
    return this.#handshakingUsers.has(userId);
  }

  /** Another handshake of this user already claimed the same key. */
  isKeyClaimedByOther(session: ClientSession): boolean {
    for (const other of this.#handshaking) {
      if (other !== session && other.userId === session.userId && other.record !== undefined && secretsEqual(other.key, session.key)) return true;
    }
    return false;
  }

  isHandshakeInProgress(session: ClientSession): boolean {
    return this.#handshaking.has(session);
  }

  beginHandshake(session: ClientSession): void {
    this.#handshaking.add(session);
  }

  /** The handshake read the connection's userId: from now on `isHandshaking(userId)` counts it. */
  identified(session: ClientSession): void {
    if (!this.#handshaking.has(session) || session.userId === '') return;
    this.#handshakingUsers.set(session.userId, (this.#handshakingUsers.get(session.userId) ?? 0) + 1);
  }

  endHandshake(session: ClientSession): void {
    if (!this.#handshaking.delete(session) || session.userId === '') return;
    const left = (this.#handshakingUsers.get(session.userId) ?? 1) - 1;
    if (left > 0) this.#handshakingUsers.set(session.userId, left);
    else this.#handshakingUsers.delete(session.userId);
  }

  /** The handshake succeeded: the session becomes this user's open connection. */
  promote(session: ClientSession): void {
    this.endHandshake(session);
    this.#open.set(session.userId, session);
    this.#byCid.set(session.cid, session);
  }

  /**
   * The connection closed. A newer connection of the same user keeps its place. A handshake in progress stays
   * listed until the handshake itself ends (it cleans up what it wrote).
   */
  remove(session: ClientSession): void {
    if (this.#open.get(session.userId) === session) this.#open.delete(session.userId);
    this.#byCid.delete(session.cid);
  }
}
