/**
 * Issue 23, acceptance 7, from the rooms' snapshots: the share of room messages that crossed nodes (against the
 * pairs'), per window and over the join/drain phase, and the nodes' CPU per message of each kind.
 *
 * A room message "crossed nodes" when its home node counted it so: the sender's node was not the home, or the home
 * sent a copy of it to another node (msg_room_messages_homed_total{path="crossed"}). A pair message crossed when its
 * two sides were on different nodes when it was sent (the load generator knows both).
 */
import type { RoomWindow, Snapshot } from './rooms-phase.js';
import type { LoadTotals } from './loadgen-rooms.js';
import type { ScaleResult } from './run.js';

export interface Share {
  crossed: number;
  total: number;
  /** crossed / total, null without messages. */
  share: number | null;
}

export interface WindowFigures {
  name: RoomWindow['name'];
  seconds: number;
  /** Sums over the nodes present at both edges. */
  nodeCores: number;
  machineCores: number;
  pairsSent: number;
  roomsSent: number;
  roomCopiesReceived: number;
  rooms: Share;
  pairs: Share;
  /** Fan-out copies the homes sent to their own node and to others. */
  copiesLocal: number;
  copiesRemote: number;
}

export interface RoomFigures {
  windows: WindowFigures[];
  /** The join/drain phase, summed over consecutive snapshots. */
  phase: { rooms: Share; pairs: Share; copiesLocal: number; copiesRemote: number } | null;
  /** Nodes' CPU per message (µs), the `idle` window's rate taken off; null when a window is missing or sent nothing. */
  cpuPerPairMessageUs: number | null;
  cpuPerRoomMessageUs: number | null;
  /** The same per copy a member received (a room message of 4 reaches 3). */
  cpuPerRoomCopyUs: number | null;
}

const share = (crossed: number, total: number): Share => ({ crossed, total, share: total > 0 ? crossed / total : null });

interface Deltas {
  seconds: number;
  nodeCpu: number;
  roomLocal: number;
  roomCrossed: number;
  copiesLocal: number;
  copiesRemote: number;
  machine: number;
  load: LoadTotals;
}

/** From one snapshot to the next: node figures over the nodes present in both. */
function deltas(a: Snapshot, b: Snapshot): Deltas {
  const d = { seconds: (b.at - a.at) / 1000, nodeCpu: 0, roomLocal: 0, roomCrossed: 0, copiesLocal: 0, copiesRemote: 0, machine: b.machineProcesses - a.machineProcesses };
  for (const [id, after] of Object.entries(b.nodes)) {
    const before = a.nodes[id];
    if (!before) continue;
    d.nodeCpu += after.cpuSeconds - before.cpuSeconds;
    d.roomLocal += after.roomLocal - before.roomLocal;
    d.roomCrossed += after.roomCrossed - before.roomCrossed;
    d.copiesLocal += after.copiesLocal - before.copiesLocal;
    d.copiesRemote += after.copiesRemote - before.copiesRemote;
  }
  const load = Object.fromEntries(Object.entries(b.load).map(([k, v]) => [k, v - (a.load[k as keyof LoadTotals] ?? 0)])) as unknown as LoadTotals;
  return { ...d, load };
}

function windowFigures(w: RoomWindow): WindowFigures {
  const d = deltas(w.from, w.to);
  return {
    name: w.name,
    seconds: d.seconds,
    nodeCores: d.nodeCpu / d.seconds,
    machineCores: d.machine / d.seconds,
    pairsSent: d.load.pairSent,
    roomsSent: d.load.roomSent,
    roomCopiesReceived: d.load.roomReceived,
    rooms: share(d.roomCrossed, d.roomCrossed + d.roomLocal),
    pairs: share(d.load.pairCross, d.load.pairCross + d.load.pairSame),
    copiesLocal: d.copiesLocal,
    copiesRemote: d.copiesRemote,
  };
}

function phaseFigures(snapshots: Snapshot[]): RoomFigures['phase'] {
  if (snapshots.length < 2) return null;
  const sum = { roomLocal: 0, roomCrossed: 0, pairCross: 0, pairSame: 0, copiesLocal: 0, copiesRemote: 0 };
  for (let i = 1; i < snapshots.length; i += 1) {
    const d = deltas(snapshots[i - 1] as Snapshot, snapshots[i] as Snapshot);
    sum.roomLocal += d.roomLocal;
    sum.roomCrossed += d.roomCrossed;
    sum.copiesLocal += d.copiesLocal;
    sum.copiesRemote += d.copiesRemote;
    sum.pairCross += d.load.pairCross;
    sum.pairSame += d.load.pairSame;
  }
  return {
    rooms: share(sum.roomCrossed, sum.roomCrossed + sum.roomLocal),
    pairs: share(sum.pairCross, sum.pairCross + sum.pairSame),
    copiesLocal: sum.copiesLocal,
    copiesRemote: sum.copiesRemote,
  };
}

/** CPU seconds above the idle window's rate, per `count`, in µs. */
function perMessageUs(w: WindowFigures | undefined, idle: WindowFigures | undefined, count: (w: WindowFigures) => number): number | null {
  if (!w || !idle || count(w) <= 0) return null;
  return (((w.nodeCores - idle.nodeCores) * w.seconds) / count(w)) * 1e6;
}

export function roomFigures(result: ScaleResult): RoomFigures | null {
  const rooms = result.rooms as ScaleResult['rooms'] | undefined;
  if (!rooms) return null;
  const windows = rooms.windows.map(windowFigures);
  const byName = (name: RoomWindow['name']): WindowFigures | undefined => windows.find((w) => w.name === name);
  const idle = byName('idle');
  return {
    windows,
    phase: phaseFigures(rooms.phase),
    cpuPerPairMessageUs: perMessageUs(byName('pairs'), idle, (w) => w.pairsSent),
    cpuPerRoomMessageUs: perMessageUs(byName('rooms'), idle, (w) => w.roomsSent),
    cpuPerRoomCopyUs: perMessageUs(byName('rooms'), idle, (w) => w.roomCopiesReceived),
  };
}
