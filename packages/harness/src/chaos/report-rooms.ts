import { table } from '../markdown.js';
import type { ChaosResult } from './run.js';

/** Issue 23, acceptance 7: the rooms that rode through the faults, per half. */
export function roomsSection(result: ChaosResult): string[] {
  const rooms = result.rooms;
  if (!rooms) return [];
  const r = rooms.halves.receipts;
  const v = rooms.halves['v1.1'];
  const codes = (c: Record<string, number>): string => (Object.keys(c).length === 0 ? '–' : Object.entries(c).map(([k, n]) => `${k} ${String(n)}`).join(', '));
  return [
    '## Rooms (contract v1.2)',
    '',
    `${String(rooms.rooms)} rooms of ${String(rooms.members / Math.max(1, rooms.rooms))} SDK members each ride through ` +
      'the same faults as the pairs. Each member connected with `connect({ room })` and joined; each sends a numbered ' +
      `room message every ${String(result.config.roomIntervalMs ?? result.config.intervalMs)} ms while open. A room ` +
      'stream is (sender, room) → one other member: every room message its sender saw acked must reach every other ' +
      'member exactly once (after the SDK drops repeats by from, room and id), in the sender\'s order; one answered ' +
      'with an error counts as errored (the sender was told), not lost. Odd rooms run with receipts on, even rooms off.',
    '',
    table(['', 'receipts on', 'receipts off (v1.1)'], [
      ['rooms / members', `${String(r.rooms)} / ${String(r.members)}`, `${String(v.rooms)} / ${String(v.members)}`],
      ['members welcomed again (moves)', r.moves, v.moves],
      ['nodes the members were on', r.nodes.join(', '), v.nodes.join(', ')],
      ['room messages sent', r.sent, v.sent],
      ['— acked', r.acked, v.acked],
      ['— errored (sender told)', `${String(r.errored)} (${codes(r.erroredByCode)})`, `${String(v.errored)} (${codes(v.erroredByCode)})`],
      ['copies owed (acked × other members)', r.copiesOwed, v.copiesOwed],
      ['copies delivered to the app', r.copiesDelivered, v.copiesDelivered],
      ['**copies lost**', `**${String(r.lost)}**`, `**${String(v.lost)}**`],
      ['duplicates after the SDK dropped repeats', r.duplicates, v.duplicates],
      ['acked but out of the sender\'s order', r.outOfOrder, v.outOfOrder],
      ['repeats the SDKs received and dropped', r.repeatsDropped, v.repeatsDropped],
    ]),
    '',
    rooms.removed.length === 0 ? 'No member was removed from its room or closed for good.' : `Removed or closed: ${rooms.removed.join(', ')}.`,
    '',
  ];
}
