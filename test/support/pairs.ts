import type { TrackedClient } from './fault-clients.js';

export interface Pairs {
  /** Both users on node-1, both on node-2. */
  sameNode: [TrackedClient, TrackedClient][];
  /** One user on each node. */
  crossNode: [TrackedClient, TrackedClient][];
}

/** Two same-node pairs (one per node) and `cross` cross-node pairs, from clients spread over node-1 and node-2. */
export function makePairs(clients: readonly TrackedClient[], cross = 2): Pairs {
  const on = (nodeId: string): TrackedClient[] => clients.filter((c) => c.nodeId === nodeId);
  const one = on('node-1');
  const two = on('node-2');
  if (one.length < 2 + cross || two.length < 2 + cross) {
    throw new Error(`need ${String(2 + cross)} clients on each node, got ${String(one.length)} and ${String(two.length)}`);
  }
  const at = (list: TrackedClient[], i: number): TrackedClient => list[i] as TrackedClient;
  return {
    sameNode: [
      [at(one, 0), at(one, 1)],
      [at(two, 0), at(two, 1)],
    ],
    crossNode: Array.from({ length: cross }, (_, i) => [at(one, 2 + i), at(two, 2 + i)] as [TrackedClient, TrackedClient]),
  };
}
