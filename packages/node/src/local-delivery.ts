import type { ConnectionTable } from './connection-table.js';
import type { Delivery } from './delivery.js';
import type { Departures } from './departures.js';
import type { LocalDelivery } from './peer/index.js';
import type { PendingQueues } from './pending-queues.js';
import type { Router } from './router.js';
import type { SenderCheck } from './sender-check.js';

export interface LocalParts {
  table: ConnectionTable;
  pending: PendingQueues;
  delivery: Delivery;
  router: Router;
  departures: Departures | undefined;
}

/** This node as the peer module's port sees it: every part exists already, so nothing here is bound late. */
export function localDelivery({ table, pending, delivery, router, departures }: LocalParts, senders: SenderCheck): LocalDelivery {
  return {
    connected: (userId) => table.has(userId),
    here: (userId) => table.has(userId) || pending.has(userId),
    locate: (userId) => router.locate(userId),
    deliverOrHold: (envelope, acked) => delivery.deliverOrHold(envelope, acked),
    departures,
    senderOn: (userId, nodeId) => senders.isOn(userId, nodeId),
    recipientMovedFrom: (userId, nodeId) => senders.movedFrom(userId, nodeId),
    peerAddress: (nodeId) => router.members.get(nodeId)?.internalAddress,
    keptOutcome: (report) => router.keptOutcome(report),
    senderOf: (cid) => table.byCid(cid),
  };
}
