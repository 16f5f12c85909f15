import type { FaultContext } from './faults.js';
import type { Fleet, Half } from './fleet.js';
import type { Ledger, MessageRecord } from './ledger.js';
import { percentiles, type Percentiles } from '../stats.js';

/** Issue 24: one half of the fleet (receipts on, or a v1.1 client), over the streams into its clients. */
export interface HalfFigures {
  clients: number;
  sent: number;
  acked: number;
  errored: number;
  /** Messages the recipients' apps got, each counted once. */
  delivered: number;
  silentlyLost: number;
  /** Arrivals the ledger saw twice, after the SDK had dropped its repeats (must be 0). */
  duplicates: number;
  ackedOutOfOrder: number;
  /** Repeats the SDKs of this half received and dropped (re-deliveries). */
  repeatsDropped: number;
}

/** Sends in one direction between a frozen client and its partner, made while the client was cut off. */
export interface FlowFigures {
  sent: number;
  acked: number;
  errored: number;
  delivered: number;
}

/** The silent-death fault: who went silent, how they came back, and what was sent to and by them meanwhile. */
export interface SilentDeathFigures {
  users: number;
  /** ms on the run's clock; undefined when no silent-death step ran. */
  at: number | undefined;
  frozenConnections: number;
  /** From the freeze to each client's next welcome (its heartbeat timeout, then the reconnect). */
  backAfterMs: Percentiles;
  /** Users not welcomed again by the end. */
  notBack: number;
  /** Their partners' sends to them between the freeze and their next welcome. */
  toThem: FlowFigures;
  /** Their own sends in the same time (held by their SDK, or swallowed by the proxy, and sent again). */
  fromThem: FlowFigures;
  /** Repeats their SDKs dropped over the whole run. */
  repeatsDropped: number;
}

/** Both halves' figures; streams `include` rejects (to users who vanished for good) are left out. */
export function halvesFigures(fleet: Fleet, ledger: Ledger, include: (stream: string) => boolean): Record<Half, HalfFigures> {
  const one = (half: Half): HalfFigures => {
    const t = ledger.totals((s) => include(s) && fleet.halfOf(s) === half);
    return {
      clients: fleet.clientsOf(half),
      sent: t.sent,
      acked: t.acked,
      errored: t.errored,
      delivered: t.delivered,
      silentlyLost: t.silentlyLost,
      duplicates: t.duplicates,
      ackedOutOfOrder: t.ackedOutOfOrder,
      repeatsDropped: fleet.repeatsDropped(half),
    };
  };
  return { receipts: one('receipts'), 'v1.1': one('v1.1') };
}

function flow(records: readonly Readonly<MessageRecord>[], from: number, to: number): FlowFigures {
  const f: FlowFigures = { sent: 0, acked: 0, errored: 0, delivered: 0 };
  for (const r of records) {
    if (r.sentAt < from || r.sentAt > to) continue;
    f.sent += 1;
    if (r.fate === 'acked') f.acked += 1;
    if (r.fate === 'errored') f.errored += 1;
    if (r.received) f.delivered += 1;
  }
  return f;
}

function add(a: FlowFigures, b: FlowFigures): FlowFigures {
  return { sent: a.sent + b.sent, acked: a.acked + b.acked, errored: a.errored + b.errored, delivered: a.delivered + b.delivered };
}

export function silentDeathFigures(fleet: Fleet, ledger: Ledger, death: FaultContext['silentDeath']): SilentDeathFigures {
  const empty: FlowFigures = { sent: 0, acked: 0, errored: 0, delivered: 0 };
  const at = death.at;
  const figures: SilentDeathFigures = {
    users: death.users.length,
    at,
    frozenConnections: death.frozenConnections,
    backAfterMs: percentiles([]),
    notBack: 0,
    toThem: empty,
    fromThem: empty,
    repeatsDropped: fleet.repeatsDroppedBy(death.users),
  };
  if (at === undefined) return figures;
  const back: number[] = [];
  for (const user of death.users) {
    const welcome = fleet.sessionsSince(user, at)[0];
    if (welcome === undefined) figures.notBack += 1;
    else back.push(welcome.at - at);
    const until = welcome?.at ?? Number.POSITIVE_INFINITY;
    for (const stream of fleet.streamsTo([user])) {
      figures.toThem = add(figures.toThem, flow(ledger.recordsOf(stream), at, until));
      const [partner] = stream.split('>');
      figures.fromThem = add(figures.fromThem, flow(ledger.recordsOf(`${user}>${partner ?? ''}`), at, until));
    }
  }
  figures.backAfterMs = percentiles(back);
  return figures;
}
