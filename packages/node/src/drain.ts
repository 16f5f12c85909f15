import type { Logger } from '@messaging-server/core';
import type { ClientSession } from './client-session.js';
import type { ConnectionTable } from './connection-table.js';
import { closePaced } from './drain-pacer.js';

/** How long into a drain a client's close may wait for the outcomes of its own messages (forwards time out at 1.5 s). */
const DRAIN_SETTLE_WAIT_MS = 2000;
/** How long a drain waits for its last clients' close events and session deletes before it revokes and resolves. */
const DRAIN_CLOSE_WAIT_MS = 2000;

export interface DrainDeps {
  table: ConnectionTable;
  timeoutSeconds: number;
  ratePerSecond: number;
  log: Logger;
  /** Publishes `state: draining`, so gateways stop allocating here. */
  announce(): Promise<void>;
  /** True when nothing is left: no connection, handshake, or message on its way (held ones aside). */
  idle(): boolean;
  /** True once the node was closed hard: the drain stops pacing. */
  closed(): boolean;
  /**
   * What the pending queue still holds for recipients that never connected here: held for them as moving users
   * (v1.1; they reconnect elsewhere), or failed (v1). Messages of this node's own senders are dropped: they send them
   * again from their next node.
   */
  handOverPending(): void;
  /** Messages still held here for moving users; the drain gives them until its deadline to find their users. */
  held(): number;
  /** True when no message or outcome report is being looked up or sent (held ones aside). */
  sent(): boolean;
  /** The deadline came: whatever is still held gets EXPIRED, reported to its senders' nodes. */
  expireHeld(): void;
  /** Session writes of closed connections still in flight. */
  sessionWrites(): Iterable<Promise<unknown>>;
  /** Stops timers, revokes the registration and closes the watch. */
  finish(): Promise<void>;
}

/**
 * The contract's drain: `draining` at once, clients closed with 4000 at the drain rate (each once its own messages
 * have their outcome, at most DRAIN_SETTLE_WAIT_MS in), then whatever is left at the deadline; resolves once the
 * closes and their session deletes settled (bounded) and the registration was revoked.
 */
export async function drain(deps: DrainDeps): Promise<void> {
  const { table, log } = deps;
  log.info({ connections: table.openCount, timeoutSeconds: deps.timeoutSeconds }, 'drain started');
  await deps.announce();
  const deadline = Date.now() + deps.timeoutSeconds * 1000;
  await closePaced<ClientSession>({
    open: () => table.open(),
    isOpen: (session) => session.isOpen,
    ready: (session, elapsedMs) => session.unsettled === 0 || elapsedMs >= DRAIN_SETTLE_WAIT_MS,
    // Clients that connect meanwhile are refused with 4000 by the handshake.
    close: (session) => session.close('node_shutdown'),
    ratePerSecond: deps.ratePerSecond,
    deadline,
    done: () => deps.closed() || deps.idle(),
  });
  for (const session of [...table.open()]) session.close('node_shutdown');
  deps.handOverPending();
  // What is still held is for senders on other nodes; it waits for its recipients until the deadline, and what it
  // released must reach them (and its outcome the sender's node) before the node goes.
  while ((deps.held() > 0 || !deps.sent()) && Date.now() < deadline && !deps.closed()) await pause(10);
  deps.expireHeld();
  await closesSettled(deps, DRAIN_CLOSE_WAIT_MS);
  await deps.finish();
  log.info({ timedOut: Date.now() >= deadline }, 'drain finished');
}

/**
 * A closed client's session delete starts on its close event, after the close frame went out. The drain waits
 * (bounded) for those events and deletes, so the owner can close the session store right after the drain without
 * leaving drained users' sessions behind until their TTL, and for the last outcome reports (the EXPIRED of what was
 * still held) to leave, since closing the node drops what its links still queue.
 */
async function closesSettled(deps: DrainDeps, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while ((deps.table.openCount > 0 || !deps.sent()) && Date.now() < until && !deps.closed()) await pause(10);
  const left = Math.max(0, until - Date.now());
  await Promise.race([Promise.allSettled([...deps.sessionWrites()]), new Promise((resolve) => setTimeout(resolve, left).unref())]);
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
