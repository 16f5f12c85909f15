/**
 * The rooms' measurements of the scale run (issue 23, acceptance 7): snapshots of every node's CPU and room counters
 * (msg_room_messages_homed_total, msg_room_fanout_copies_total) with the load generator's totals, taken at the edges
 * of windows in which the cluster's membership does not change, and every few seconds through the join/drain phase.
 */
import type { LocalCluster } from '@messaging-server/testkit';
import type { LoadTotals } from './loadgen-rooms.js';
import type { ScaleLoadGen } from './loadgen-driver.js';
import { cpuIfAlive, machineCpu } from '../proc.js';

/** One node's cumulative figures. */
export interface NodeTally {
  cpuSeconds: number;
  roomLocal: number;
  roomCrossed: number;
  copiesLocal: number;
  copiesRemote: number;
}

export interface Snapshot {
  /** Epoch ms. */
  at: number;
  nodes: Record<string, NodeTally>;
  load: LoadTotals;
  /** The whole machine's process CPU seconds (everyone's). */
  machineProcesses: number;
}

/**
 * A window: `pairs` (only pairs send), `rooms` (only rooms send), `idle` (neither; churn and heartbeats go on), all three
 * on the 20 nodes before any join or drain; `after` (both send) once the last drain is done.
 */
export interface RoomWindow {
  name: 'pairs' | 'rooms' | 'idle' | 'after';
  from: Snapshot;
  to: Snapshot;
}

export interface RoomsMeasurements {
  opened: number;
  joined: number;
  openSeconds: number;
  windows: RoomWindow[];
  /** Through the join/drain phase, every `snapshotMs`. */
  phase: Snapshot[];
}

// The node's registry adds node_id to every series, so the label of interest may sit anywhere in the braces.
const COUNTER = /^(msg_room_messages_homed_total|msg_room_fanout_copies_total)\{[^}]*\b(?:path|to)="([a-z]+)"[^}]*\} ([0-9.e+]+)$/gm;

async function nodeTally(internalUrl: string, pid: number | undefined): Promise<NodeTally | undefined> {
  try {
    const text = await (await fetch(`${internalUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const cpuSeconds = cpuIfAlive(pid);
    if (cpuSeconds === undefined) return undefined;
    const tally: NodeTally = { cpuSeconds, roomLocal: 0, roomCrossed: 0, copiesLocal: 0, copiesRemote: 0 };
    for (const [, name, label, value] of text.matchAll(COUNTER)) {
      const v = Number(value);
      if (name === 'msg_room_messages_homed_total') tally[label === 'crossed' ? 'roomCrossed' : 'roomLocal'] = v;
      else tally[label === 'remote' ? 'copiesRemote' : 'copiesLocal'] = v;
    }
    return tally;
  } catch {
    return undefined; // a node that exited meanwhile: left out of this snapshot, so out of the window's sums
  }
}

export async function snapshot(cluster: LocalCluster, loadgen: ScaleLoadGen): Promise<Snapshot> {
  const nodes = [...cluster.nodes.values()];
  const [tallies, load] = await Promise.all([Promise.all(nodes.map((n) => nodeTally(n.internalUrl, n.process.pid))), loadgen.call('totals')]);
  const out: Record<string, NodeTally> = {};
  nodes.forEach((node, i) => {
    const tally = tallies[i];
    if (tally) out[node.nodeId] = tally;
  });
  return { at: Date.now(), nodes: out, load, machineProcesses: machineCpu().processes };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs one window of `seconds` with the given kinds sending; the first second after a pace change is not measured. */
async function window(cluster: LocalCluster, loadgen: ScaleLoadGen, name: RoomWindow['name'], seconds: number, kinds: { pairs: boolean; rooms: boolean }): Promise<RoomWindow> {
  await loadgen.call('pace', kinds);
  await sleep(1000); // what the previous window sent lands first
  const from = await snapshot(cluster, loadgen);
  await sleep(seconds * 1000);
  return { name, from, to: await snapshot(cluster, loadgen) };
}

/** The three stable windows before the join/drain phase; both kinds send again afterwards. */
export async function stableWindows(cluster: LocalCluster, loadgen: ScaleLoadGen, seconds: number, say: (line: string) => void): Promise<RoomWindow[]> {
  say(`rooms: three ${String(seconds)} s windows on a stable cluster (pairs only, rooms only, neither) for CPU per message and the cross-node share`);
  const windows = [
    await window(cluster, loadgen, 'pairs', seconds, { pairs: true, rooms: false }),
    await window(cluster, loadgen, 'rooms', seconds, { pairs: false, rooms: true }),
    await window(cluster, loadgen, 'idle', seconds, { pairs: false, rooms: false }),
  ];
  await loadgen.call('pace', { pairs: true, rooms: true });
  return windows;
}

/** The window after the last drain: both kinds send, membership stable again. */
export function afterWindow(cluster: LocalCluster, loadgen: ScaleLoadGen, seconds: number): Promise<RoomWindow> {
  return window(cluster, loadgen, 'after', seconds, { pairs: true, rooms: true });
}

/** Snapshots every `ms` until the returned function is called (resolves with them, the last one taken then). */
export function snapshotsEvery(cluster: LocalCluster, loadgen: ScaleLoadGen, ms: number): () => Promise<Snapshot[]> {
  const taken: Snapshot[] = [];
  let busy = false;
  const take = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      taken.push(await snapshot(cluster, loadgen));
    } catch {
      // a snapshot that failed leaves a longer interval, not a wrong one
    } finally {
      busy = false;
    }
  };
  void take();
  const timer = setInterval(() => void take(), ms);
  return async () => {
    clearInterval(timer);
    while (busy) await sleep(20);
    await take();
    return taken;
  };
}
