import type { NodeId } from '@messaging-server/protocol';
import { BoundedMap } from './bounded-map.js';

const LOCATION_CACHE_MAX = 100_000;
const LOCATION_CACHE_TTL_MS = 10 * 60_000;
/**
 * A remote location looked up this recently is used without asking the store again (one lookup per recipient
 * per second under load instead of one per outbox drain). A user who moved meanwhile makes the old node answer
 * PEER_UNAVAILABLE (v1), and such a message is routed once more after a fresh lookup, in its place; under v1.1 the
 * old node answers `moving` instead, and the hold finds the user where it went.
 */
const LOCATION_TRUST_MS = 1000;

/** Recently seen recipient locations (userId → nodeId), oldest evicted first. */
export class LocationCache {
  private readonly locations = new BoundedMap<string, { nodeId: NodeId; at: number }>(LOCATION_CACHE_MAX);

  remember(userId: string, nodeId: NodeId): void {
    this.locations.set(userId, { nodeId, at: Date.now() });
  }

  forget(userId: string): void {
    this.locations.delete(userId);
  }

  /** Fresh enough to route to without a lookup (LOCATION_TRUST_MS). */
  trusted(userId: string): NodeId | undefined {
    const known = this.locations.get(userId);
    return known && Date.now() - known.at <= LOCATION_TRUST_MS ? known.nodeId : undefined;
  }

  /** Any location younger than the cache TTL: the stand-in while the session store cannot answer. */
  lastKnown(userId: string): NodeId | undefined {
    const known = this.locations.get(userId);
    return known && Date.now() - known.at < LOCATION_CACHE_TTL_MS ? known.nodeId : undefined;
  }
}
