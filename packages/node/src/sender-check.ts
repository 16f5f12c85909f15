import type { Logger, SessionStore } from '@messaging-server/core';
import { BoundedMap } from './bounded-map.js';

/** A sender confirmed on a node this recently is taken as still there without asking the store again. */
const RECHECK_AFTER_MS = 10_000;
/**
 * How long a confirmation stands in when the store no longer says so: its record is gone (memcached restarted empty,
 * re-assertion pending) or names the sender's next node (it moved, and what it sent from here is still arriving:
 * a batch in flight, a drain handing on what it held).
 */
const REMEMBER_MS = 60_000;
const MAX_ENTRIES = 100_000;

/**
 * A forwarded message's sender is held to what the session store says: the sender's session must be on the node that
 * forwarded it, or have been there within REMEMBER_MS as this node saw it. So a node can speak for its own users, and
 * for a minute for those that just left it, never for users it never held. A store that cannot answer lets it
 * through, as every relay keeps working on last known locations during a store outage.
 */
export class SenderCheck {
  /** When each (sender, node) was last confirmed. */
  private readonly confirmed = new BoundedMap<string, number>(MAX_ENTRIES);

  constructor(
    private readonly sessions: SessionStore,
    private readonly log: Logger,
  ) {}

  /**
   * Whether `userId` moved to this node from `nodeId` within REMEMBER_MS: what that node held for the user while it
   * was there comes with its own name on it, not the senders' (a drain hands it on). A node can write anything to
   * the users it holds, so speaking for their senders a minute longer gives it nothing new.
   */
  async movedFrom(userId: string, nodeId: string, now = Date.now()): Promise<boolean> {
    try {
      const record = await this.sessions.get(userId);
      return record?.movedFrom === nodeId && now - Date.parse(record.createdAt) < REMEMBER_MS;
    } catch (error) {
      this.log.warn({ userId, err: error }, 'sender check could not reach the session store');
      return true;
    }
  }

  async isOn(userId: string, nodeId: string, now = Date.now()): Promise<boolean> {
    const key = `${userId}\u0000${nodeId}`;
    const at = this.confirmed.get(key);
    if (at !== undefined && now - at < RECHECK_AFTER_MS) return true;
    try {
      const record = await this.sessions.get(userId);
      if (record?.nodeId === nodeId) {
        this.confirmed.set(key, now);
        return true;
      }
      return at !== undefined && now - at < REMEMBER_MS;
    } catch (error) {
      this.log.warn({ userId, err: error }, 'sender check could not reach the session store');
      return true;
    }
  }
}
