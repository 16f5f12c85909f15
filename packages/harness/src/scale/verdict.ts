/** What must hold for the scale run to pass (issue 16, acceptance 5). Each function returns failures; empty passes. */
import type { Figures } from './analysis.js';
import type { ScaleResult } from './run.js';

/** p99 of node registration → first allocation on every gateway. */
export const MAX_PROPAGATION_P99_MS = 1000;
/** The largest settled node's connections over their mean. */
export const MAX_SPREAD_OVER_MEAN = 0.15;

/** Issue 23, acceptance 7: room messages that crossed nodes, on a stable cluster whose members connected with the room's name. */
export const MAX_ROOM_CROSSED_SHARE = 0.05;

/** The rooms' figures: every member opened and joined, each window measured, both CPU figures present. */
export function missingRoomFigures(result: ScaleResult, f: Figures): string[] {
  const { config } = result;
  const members = config.rooms * config.membersPerRoom;
  const r = f.rooms;
  if (!r) return ['missing: the run has no rooms measurements'];
  const failures: string[] = [];
  if (result.rooms.opened < members) failures.push(`only ${String(result.rooms.opened)} of ${String(members)} room members opened`);
  if (result.rooms.joined < members) failures.push(`only ${String(result.rooms.joined)} of ${String(members)} room members joined`);
  for (const name of ['pairs', 'rooms', 'idle', 'after'] as const) if (!r.windows.some((w) => w.name === name)) failures.push(`missing: no "${name}" window`);
  if (r.cpuPerPairMessageUs === null) failures.push('missing: no CPU per pair message');
  if (r.cpuPerRoomMessageUs === null) failures.push('missing: no CPU per room message');
  if (r.phase?.rooms.share == null) failures.push('missing: no room message counted by a home during the join/drain phase');
  return failures;
}

/** The room messages' cross-node share in the stable `rooms` window (missing fails). */
export function roomAcceptance(f: Figures): string[] {
  const share = f.rooms?.windows.find((w) => w.name === 'rooms')?.rooms.share;
  if (share === null || share === undefined) return ['missing: no room message counted in the stable rooms window'];
  if (share >= MAX_ROOM_CROSSED_SHARE) return [`room messages that crossed nodes on a stable cluster: ${(share * 100).toFixed(1)} % ≥ ${String(MAX_ROOM_CROSSED_SHARE * 100)} %`];
  return [];
}

/** Every figure the report gives must have been measured: a figure without data fails, never reads as zero. */
export function missingFigures(result: ScaleResult, f: Figures): string[] {
  const failures: string[] = [];
  const { config } = result;
  if (result.opened.idle < config.idleClients) failures.push(`only ${String(result.opened.idle)} of ${String(config.idleClients)} idle clients opened`);
  if (result.opened.pairClients < 2 * config.pairs) failures.push(`only ${String(result.opened.pairClients)} of ${String(2 * config.pairs)} pair clients opened`);
  if (f.propagation.joins.length === 0) failures.push('missing: no node joined during the run');
  for (const pair of f.propagation.missing) failures.push(`missing: ${pair} was never allocated to (or its registration never seen)`);
  if (f.spread.worst === null) failures.push('missing: no sample with settled active nodes, so no spread');
  if (result.load.latency.crossNode.count === 0) failures.push('missing: no cross-node message arrived');
  if (f.rates === null) failures.push('missing: fewer than two etcd and memcached readings during the run');
  else {
    if (!(f.rates.etcdRequestsPerSecond > 0)) failures.push('missing: etcd served no request during the run');
    if (!(f.rates.memcachedOpsPerSecond > 0)) failures.push('missing: memcached served no command during the run');
  }
  if (f.memory.rssPerConnectionKiB === null) failures.push('missing: no RSS sample with connections');
  const drains = result.timeline.filter((e) => e.event === 'drained').length;
  if (drains === 0) failures.push('missing: no node drained during the run');
  return failures;
}

/** Acceptance 5: allocation to a joined node within 1 s (p99) on every gateway, spread within 15 %, under the budget. */
export function acceptance(result: ScaleResult, f: Figures): string[] {
  const failures: string[] = [];
  const p99 = f.propagation.delays.p99;
  if (p99 !== null && p99 > MAX_PROPAGATION_P99_MS) failures.push(`join → first allocation p99 ${String(Math.round(p99))} ms > ${String(MAX_PROPAGATION_P99_MS)} ms`);
  const worst = f.spread.worst;
  if (worst && worst.over > MAX_SPREAD_OVER_MEAN) {
    failures.push(
      `largest settled node ${worst.maxNode} had ${String(worst.max)} connections at t=${worst.at.toFixed(0)} s, ` +
        `${(worst.over * 100).toFixed(1)} % over the mean ${worst.mean.toFixed(0)} (limit ${String(MAX_SPREAD_OVER_MEAN * 100)} %)`,
    );
  }
  if (result.durationSeconds > result.config.budgetSeconds) {
    failures.push(`the run took ${result.durationSeconds.toFixed(0)} s, over its ${String(result.config.budgetSeconds)} s budget`);
  }
  return failures;
}

export function verdict(result: ScaleResult, f: Figures): string[] {
  return [...missingFigures(result, f), ...acceptance(result, f), ...missingRoomFigures(result, f), ...roomAcceptance(f)];
}
