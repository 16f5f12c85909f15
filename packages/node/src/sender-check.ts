import type { Logger, SessionStore } from '@messaging-server/core';
import { BoundedMap } from './bounded-map.js';

/** A sender confirmed on a node this recently is taken as still there without asking the store again. */
const RECHECK_AFTER_MS = 10_000;
/** How long a confirmation stands in when the store has no record (memcached restarted empty, re-assertion pending). */
const REMEMBER_MS = 60_000;
const MAX_ENTRIES = 100_000;

/**
 * Without a cluster secret, anything that reaches the internal port could name any `from` in a delivery request.
 * This check holds a forwarded message's sender to what the session store says: the sender's session must be on the
 * node that forwarded it. A record on another node refuses it; so does no record, unless the sender was confirmed
 * there within REMEMBER_MS (a restarted memcached is refilled by re-assertion). A store that cannot answer lets it
 * through, as every relay keeps working on last known locations during a store outage.
 */
export class SenderCheck {
  private readonly confirmed = new BoundedMap<string, { nodeId: string; at: number }>(MAX_ENTRIES);

  constructor(
    private readonly sessions: SessionStore,
    private readonly log: Logger,
  ) {}

  async isOn(userId: string, nodeId: string, now = Date.now()): Promise<boolean> {
    const known = this.confirmed.get(userId);
    if (known?.nodeId === nodeId && now - known.at < RECHECK_AFTER_MS) return true;
    try {
      const record = await this.sessions.get(userId);
      if (record?.nodeId === nodeId) {
        this.remember(userId, nodeId, now);
        return true;
      }
      if (record) return false;
      return known?.nodeId === nodeId && now - known.at < REMEMBER_MS;
    } catch (error) {
      this.log.warn({ userId, err: error }, 'sender check could not reach the session store');
      return true;
    }
  }

  private remember(userId: string, nodeId: string, now: number): void {
    this.confirmed.set(userId, { nodeId, at: now });
  }
}
