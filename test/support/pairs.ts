import { waitFor } from '@messaging-server/testkit';
import { every, type MessageLedger, type TrackedClient } from './fault-clients.js';

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

/**
 * Every pair exchanges one message each way every `intervalMs`, tracked by the ledger; resolves once 100 have been
 * acked, so a fault injected afterwards hits live traffic. Stop it with the returned handle.
 */
export async function startPairTraffic(
  ledger: MessageLedger,
  pairs: readonly [TrackedClient, TrackedClient][],
  intervalMs = 50,
): Promise<{ stop(): Promise<void> }> {
  const traffic = every(intervalMs, () => {
    for (const [a, b] of pairs) {
      void ledger.send(a, b.userId);
      void ledger.send(b, a.userId);
    }
  });
  await waitFor(() => ledger.report().acked >= 100, { timeoutMs: 10_000, what: 'traffic before the outage' });
  return traffic;
}
