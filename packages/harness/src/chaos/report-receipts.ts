import { table } from '../markdown.js';
import type { ChaosResult } from './run.js';

/** Issue 24: the two halves side by side, and the silent network death. */
export function receiptsSection(result: ChaosResult): string[] {
  const { halves, silentDeath: d, config } = result;
  const r = halves.receipts;
  const v = halves['v1.1'];
  const out = [
    '## Receipts on and off (contract v1.2)',
    '',
    'Odd pairs run the SDK with `receipts: true` (an ack means the recipient\'s client confirmed the message), even ' +
      'pairs with `receipts: false` (a v1.1 client: an ack means the message was handed to its connection). Each row ' +
      'counts the streams into that half\'s clients; the zero-loss verdict holds each half to the same rule.',
    '',
    table(['', 'receipts on', 'receipts off (v1.1)'], [
      ['clients', r.clients, v.clients],
      ['sent', r.sent, v.sent],
      ['acked', r.acked, v.acked],
      ['errored (sender told)', r.errored, v.errored],
      ['delivered to the app', r.delivered, v.delivered],
      ['**silently lost**', `**${String(r.silentlyLost)}**`, `**${String(v.silentlyLost)}**`],
      ['acked but out of order', r.ackedOutOfOrder, v.ackedOutOfOrder],
      ['duplicates after the SDK dropped repeats', r.duplicates, v.duplicates],
      ['repeats the SDKs received and dropped', r.repeatsDropped, v.repeatsDropped],
    ]),
    '',
  ];
  if (d.at === undefined) return out;
  const b = d.backAfterMs;
  out.push(
    '## Silent network death',
    '',
    `${String(d.users)} receipted clients (the second user of ${String(d.users)} receipted pairs) reach their nodes through ` +
      'a TCP proxy on 127.0.0.1 started by the run (one per node, `packages/testkit/src/freezing-proxy.ts`). At ' +
      `${(d.at / 1000).toFixed(1)} s the proxy stopped forwarding their websockets in both directions, with no FIN ` +
      `and no RST: ${String(d.frozenConnections)} connections went silent. Each client noticed by its own pings (one every ` +
      `${String(config.pingIntervalMs)} ms, dead after ${String(config.pingTimeoutMs)} ms without a pong) and reconnected; ` +
      'their nodes were told nothing. Their partners kept sending throughout. Only receipted clients are routed ' +
      'through the proxy: a v1.1 client behind a dead network loses what was acked into its socket (contract v1.1\'s ' +
      'known limit), so the run does not freeze one. Their streams count in the totals and the receipts row above.',
    '',
    table(['', 'count'], [
      ['welcomed again after the freeze, p50 / max', b.count === 0 ? '–' : `${String(b.p50)} / ${String(b.max)} ms`],
      ['never welcomed again', d.notBack],
      ['sent to them while cut off', d.toThem.sent],
      ['— acked', d.toThem.acked],
      ['— delivered', d.toThem.delivered],
      ['— errored (sender told)', d.toThem.errored],
      ['sent by them while cut off', d.fromThem.sent],
      ['— acked', d.fromThem.acked],
      ['— delivered', d.fromThem.delivered],
      ['repeats their SDKs dropped (whole run)', d.repeatsDropped],
    ]),
    '',
  );
  return out;
}
