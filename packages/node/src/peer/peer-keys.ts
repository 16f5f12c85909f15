import type { PeerKeyLookup } from '@messaging-server/core';
import type { NodeRecord } from '@messaging-server/protocol';

/**
 * The identity key of the node at an internal address, from this node's registry view: what its identity needs to
 * sign a request to that address. The last match per address is remembered and re-checked against the view, so the
 * usual lookup is two map reads and a node that moved or restarted is never answered with its old key.
 */
export function peerKeyLookup(members: ReadonlyMap<string, NodeRecord>): PeerKeyLookup {
  const lastAt = new Map<string, string>();
  return (address) => {
    const known = lastAt.get(address);
    const hit = known === undefined ? undefined : members.get(known);
    if (hit?.internalAddress === address) return hit.identityKey;
    for (const record of members.values()) {
      if (record.internalAddress !== address) continue;
      if (lastAt.size >= 10_000) lastAt.clear();
      lastAt.set(address, record.nodeId);
      return record.identityKey;
    }
    return undefined;
  };
}
