import type { ConnectRequest, NodeRecord, Session, SessionRecord } from '@messaging-server/protocol';
import { randomToken, REPLACE_PATH, type Logger, type PeerTransport, type SessionStore } from '@messaging-server/core';
import { HttpError } from './http-error.js';
import { beforeDeadline } from './deadline.js';
import type { NodeView } from './node-view.js';
import { RecentUsers } from './recent-users.js';

export type ConflictPolicy = 'replace' | 'reject';

export interface SessionAllocatorOptions {
  view: NodeView;
  sessions: SessionStore;
  transport: PeerTransport;
  policy: ConflictPolicy;
  handshakeTimeoutSeconds: number;
  /** Budget for all session store calls of one /connect (the contract answers within about 1 s). */
  storeBudgetMs: number;
  onStoreError?: () => void;
  onAllocated?: (nodeId: string) => void;
}


/** How many userIds the replace policy's hint remembers (a Set of short strings: a few MiB at most). */
const RECENT_USERS = 50_000;

export function newListeningKey(): string {
  return randomToken(32);
}

/**
 * Turns a valid /connect request into a stored session on a chosen node, applying the session conflict policy.
 * Throws HttpError for the contract's 409/503 answers.
 */
export class SessionAllocator {
  private readonly recent = new RecentUsers(RECENT_USERS);

  constructor(private readonly options: SessionAllocatorOptions) {}

  /** `roomGrants`: the token's `rooms` claim (v1.2), kept in the session record for whichever node the user lands on. */
  async connect(request: ConnectRequest, log: Logger, roomGrants?: string[]): Promise<Session> {
    const { view } = this.options;
    const node = request.room === undefined ? view.allocate(request.avoid) : view.allocateForRoom(request.room, request.avoid);
    if (!node) throw new HttpError('NO_NODE_AVAILABLE', 'no node is available; retry later');
    const record: SessionRecord = {
      userId: request.userId,
      listeningAddress: node.listeningAddress,
      listeningKey: newListeningKey(),
      acked: false,
      nodeId: node.nodeId,
      createdAt: new Date().toISOString(),
      ...(roomGrants === undefined ? {} : { roomGrants }),
    };
    const deadline = Date.now() + this.options.storeBudgetMs;
    let previous: SessionRecord | undefined;
    try {
      previous = this.options.policy === 'reject' ? await this.createOrReject(record, deadline) : await this.replace(record, deadline);
    } catch (error) {
      view.release(node.nodeId);
      if (error instanceof HttpError) throw error;
      this.options.onStoreError?.();
      log.warn({ err: error, userId: record.userId }, 'session store unavailable');
      throw new HttpError('SESSION_STORE_UNAVAILABLE', 'session store unavailable; retry later', { cause: error });
    }
    this.options.onAllocated?.(node.nodeId);
    if (previous) this.notifyReplaced(previous, log);
    log.info({ userId: record.userId, nodeId: node.nodeId, room: request.room, replaced: previous !== undefined }, 'session allocated');
    const { userId, listeningAddress, listeningKey, acked, nodeId } = record;
    return { userId, listeningAddress, listeningKey, acked, nodeId };
  }

  /**
   * The replace policy needs the previous record only to tell its node (4503). A user with no record is written by
   * one atomic `add`: when it wins there was nothing to replace, so the read is saved (a connect then costs the
   * gateway one memcached call instead of two). When a record exists, or this gateway saw the user lately, it is
   * read and then overwritten, as before.
   */
  private async replace(record: SessionRecord, deadline: number): Promise<SessionRecord | undefined> {
    const { sessions, handshakeTimeoutSeconds } = this.options;
    const seen = this.recent.has(record.userId);
    this.recent.add(record.userId);
    if (!seen && (await beforeDeadline(sessions.create(record, handshakeTimeoutSeconds), deadline, 'session create'))) return undefined;
    const previous = await beforeDeadline(sessions.get(record.userId), deadline, 'session get');
    // v1.2: a replaced session is a move, so the user's rooms go with it to its next node, and its old node may
    // hand on what it held for the user there.
    const next: SessionRecord = {
      ...record,
      ...(previous?.rooms === undefined ? {} : { rooms: previous.rooms }),
      ...(previous === undefined || previous.nodeId === record.nodeId ? {} : { movedFrom: previous.nodeId }),
    };
    await beforeDeadline(sessions.put(next, handshakeTimeoutSeconds), deadline, 'session put');
    return previous;
  }

  private async createOrReject(record: SessionRecord, deadline: number): Promise<SessionRecord | undefined> {
    const { sessions, handshakeTimeoutSeconds } = this.options;
    // Two rounds: the existing record may expire between the failed add and the read.
    for (let round = 0; round < 2; round += 1) {
      if (await beforeDeadline(sessions.create(record, handshakeTimeoutSeconds), deadline, 'session create')) return undefined;
      const existing = await beforeDeadline(sessions.get(record.userId), deadline, 'session get');
      if (!existing) continue;
      if (this.isLive(existing)) throw new HttpError('USER_TAKEN', 'userId is already connected');
      // Compare-and-set on the stale record: of two /connects that both read it, only one may take its place.
      const replaceStale = (current: SessionRecord): SessionRecord | undefined => (this.isLive(current) ? undefined : record);
      const took = sessions.updateIfMatches(record.userId, existing.listeningKey, replaceStale, handshakeTimeoutSeconds);
      if (await beforeDeadline(took, deadline, 'session replace')) return existing;
    }
    throw new HttpError('USER_TAKEN', 'userId is already connected');
  }

  /** Acked on a registered node, or un-acked and still within its handshake time. A moving user (v1.1) is not live. */
  private isLive(session: SessionRecord): boolean {
    if (session.moving === true) return false;
    if (session.acked) return this.options.view.nodes.has(session.nodeId);
    const created = Date.parse(session.createdAt);
    if (Number.isNaN(created)) return false;
    return Date.now() - created < this.options.handshakeTimeoutSeconds * 1000;
  }

  private notifyReplaced(previous: SessionRecord, log: Logger): void {
    const node: NodeRecord | undefined = this.options.view.nodes.get(previous.nodeId);
    if (!node) {
      log.debug({ userId: previous.userId, nodeId: previous.nodeId }, 'replaced session was on an unknown node');
      return;
    }
    const body = { userId: previous.userId, listeningKey: previous.listeningKey };
    this.options.transport.post(node.internalAddress, REPLACE_PATH, body).then(
      () => log.debug({ userId: previous.userId, nodeId: node.nodeId }, 'replaced session notified'),
      (error: unknown) => log.warn({ err: error, userId: previous.userId, nodeId: node.nodeId }, 'replace notification failed'),
    );
  }
}
