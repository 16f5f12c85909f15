/** The rooms' part of docs/scale.md (issue 23, acceptance 7): its verdict table and its section. */
import type { Figures } from './analysis.js';
import { table } from '../markdown.js';
import type { Share, WindowFigures } from './rooms-analysis.js';
import type { ScaleResult } from './run.js';
import { MAX_ROOM_CROSSED_SHARE, missingRoomFigures, roomAcceptance } from './verdict.js';

const pct = (s: Share | undefined | null): string => (s?.share === null || s?.share === undefined ? '–' : `${(s.share * 100).toFixed(1)} % (${s.crossed.toLocaleString('en')} of ${s.total.toLocaleString('en')})`);
const us = (v: number | null): string => (v === null ? '–' : `${v.toFixed(0)} µs`);
const ok = (pass: boolean): string => (pass ? 'yes' : '**no**');

export function roomVerdictSection(result: ScaleResult, f: Figures): string[] {
  const stable = f.rooms?.windows.find((w) => w.name === 'rooms');
  const failures = [...missingRoomFigures(result, f), ...roomAcceptance(f)];
  return [
    '## Acceptance 7 (issue 23): rooms',
    '',
    table(['criterion', 'measured', 'limit', 'met'], [
      [
        'room messages that crossed nodes, stable cluster (the `rooms` window below)',
        pct(stable?.rooms),
        `< ${String(MAX_ROOM_CROSSED_SHARE * 100)} %`,
        ok(roomAcceptance(f).length === 0),
      ],
    ]),
    '',
    failures.length === 0 ? 'Every rooms figure below was measured; none is missing.' : `**Failures:**\n\n${failures.map((x) => `- ${x}`).join('\n')}`,
    '',
  ];
}

const WINDOW_TEXT: Record<WindowFigures['name'], string> = {
  pairs: 'pairs only (20 nodes, before any join)',
  rooms: 'rooms only (20 nodes, before any join)',
  idle: 'neither (churn and heartbeats only)',
  after: 'both, after the last drain',
};

function windowRows(windows: WindowFigures[]): string[][] {
  return windows.map((w) => [
    WINDOW_TEXT[w.name],
    w.seconds.toFixed(1),
    w.pairsSent.toLocaleString('en'),
    w.roomsSent.toLocaleString('en'),
    pct(w.pairs),
    pct(w.rooms),
    `${w.copiesLocal.toLocaleString('en')} / ${w.copiesRemote.toLocaleString('en')}`,
    `${w.nodeCores.toFixed(2)} / ${w.machineCores.toFixed(2)}`,
  ]);
}

export function roomsSection(result: ScaleResult, f: Figures): string[] {
  const r = f.rooms;
  if (!r) return ['## Rooms', '', 'No rooms measurements in this run.', ''];
  const c = result.config;
  const load = result.load.rooms as ScaleResult['load']['rooms'] | undefined;
  const lat = load?.latency;
  return [
    '## Rooms beside random pairs',
    '',
    `${String(c.rooms)} rooms of ${String(c.membersPerRoom)} (${(c.rooms * c.membersPerRoom).toLocaleString('en')} users; opened ${result.rooms.opened.toLocaleString('en')}, joined ${result.rooms.joined.toLocaleString('en')} in ${result.rooms.openSeconds.toFixed(1)} s): ` +
      `each member calls \`/connect {userId, room}\`, then sends \`join\` once (after a drain's reconnect it sends nothing, the node resumes its rooms) ` +
      `and one room message every ${String(c.roomIntervalMs)} ms, for the whole run beside the ${String(c.pairs)} pairs.`,
    '',
    '**Crossed nodes.** A room message crossed nodes when any part of it went node-to-node: its sender was not on the room\'s home node, ' +
      'or the home sent a copy of it to another node. The home counts each message it orders once, `local` or `crossed` ' +
      '(`msg_room_messages_homed_total{path}`); the table sums those counters over the nodes up at both ends of a window. ' +
      'A pair message crossed when its two sides were on different nodes when it was sent (the load generator knows both). ' +
      'Copies: the homes\' fan-out, one per node holding members (`msg_room_fanout_copies_total{to}`), to their own node / to others.',
    '',
    `Windows of ${String(c.roomWindowSeconds)} s in which no node joins or leaves; each starts 1 s after the kinds that send changed. CPU: cores of the nodes / of every process on the machine.`,
    '',
    table(['window', 's', 'pair msgs', 'room msgs', 'pairs crossed', 'room msgs crossed', 'copies local / remote', 'CPU nodes / machine'], windowRows(r.windows)),
    '',
    r.phase
      ? `Through the join/drain phase (a node joins every ${String(c.cycleSeconds)} s, the oldest drains ${String(c.drainAfterSeconds)} s later), from node snapshots every 5 s: ` +
        `room messages crossed ${pct(r.phase.rooms)}, pairs ${pct(r.phase.pairs)}; copies local / remote ${r.phase.copiesLocal.toLocaleString('en')} / ${r.phase.copiesRemote.toLocaleString('en')}.`
      : 'No snapshots of the join/drain phase.',
    '',
    `**Nodes' CPU per message**, from the stable windows: the nodes' CPU in the pairs-only (rooms-only) window, less the idle window's rate over the same time, divided by the messages sent in it. ` +
      `Pair message: **${us(r.cpuPerPairMessageUs)}**; room message: **${us(r.cpuPerRoomMessageUs)}** (${us(r.cpuPerRoomCopyUs)} per copy a member received, ${String(c.membersPerRoom - 1)} per message). ` +
      'The two cores are shared with other users of the machine, so these are one run\'s figures, not a benchmark (docs/benchmarks.md measures one node and two on their own).',
    '',
    load
      ? `Room messages in the join/drain phase: sent ${load.sent.toLocaleString('en')}, acked ${load.acked.toLocaleString('en')}, copies received ${load.received.toLocaleString('en')} ` +
        `(${String(c.membersPerRoom - 1)} per message would be ${(load.sent * (c.membersPerRoom - 1)).toLocaleString('en')}; a member removed from its room gets nothing until it joins again); ` +
        `${load.removed.toLocaleString('en')} times a member got its own \`left\` (removed: away past the resume window, or over a held cap) and joined again; ` +
        `errors: ${Object.keys(load.errors).length === 0 ? 'none' : Object.entries(load.errors).map(([k, v]) => `${k} ${String(v)}`).join(', ')}; ${load.skipped.toLocaleString('en')} sends skipped while the sender was between connections. ` +
        `Sender → member latency p50 / p99 / max: ${lat?.count ? `${lat.p50?.toFixed(1) ?? '–'} ms / ${lat.p99?.toFixed(0) ?? '–'} ms / ${lat.max?.toFixed(0) ?? '–'} ms` : '–'}.`
      : '',
    '',
  ];
}
