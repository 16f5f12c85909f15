/** The report's "Receipts on and off" section (issue 24): the receipts runs side by side, with their ratios. */
import { receiptsRuns, shapeKey, shapeLabel, type BenchResults, type ReceiptsRow } from './results.js';
import { CONFIRM_INTERVAL_MS } from './receipts.js';
import { formatNumber as f, formatRatio as x } from '../markdown.js';
import { median, ratioByRound } from '../stats.js';

/** The rows of one receipts run with one setting. */
function rowsOf(results: BenchResults, receipts: boolean, run: ReturnType<typeof receiptsRuns>[number]): ReceiptsRow[] {
  return results.receipts.filter((r) => r.receipts === receipts && r.scenario === run.scenario && r.shape === shapeKey(run.shape) && r.size === run.size);
}

const cpuOf = (r: ReceiptsRow): number => r.allCpuUsPerMessage;
const rateOf = (r: ReceiptsRow): number => r.rate;

/** Medians and on ÷ off ratios per receipts run, for benchmarks.json's summary. */
export function receiptsSummary(results: BenchResults): Record<string, unknown>[] {
  return receiptsRuns(results.config.receiptsShapes ?? []).map((run) => {
    const off = rowsOf(results, false, run);
    const on = rowsOf(results, true, run);
    const m = (rows: ReceiptsRow[], pick: (r: ReceiptsRow) => number): number => median(rows.map(pick));
    return {
      scenario: run.scenario,
      shape: shapeKey(run.shape),
      size: run.size,
      rate: { off: m(off, rateOf), on: m(on, rateOf) },
      allCpuUsPerMessage: { off: m(off, cpuOf), on: m(on, cpuOf) },
      ackP50Ms: { off: m(off, (r) => r.ackLatencyMs.p50), on: m(on, (r) => r.ackLatencyMs.p50) },
      ackP99Ms: { off: m(off, (r) => r.ackLatencyMs.p99), on: m(on, (r) => r.ackLatencyMs.p99) },
      confirmWaitP50Ms: m(on, (r) => r.confirmWaitMs?.p50 ?? NaN),
      cpuOnVsOff: ratioByRound(on, off, cpuOf),
      rateOnVsOff: ratioByRound(on, off, rateOf),
    };
  });
}

export function receiptsSection(results: BenchResults): string[] {
  const runs = receiptsRuns(results.config.receiptsShapes ?? []);
  if (runs.length === 0) return [];
  const md: string[] = ['## Receipts on and off', ''];
  md.push(
    `Ours only (issue 24, contract v1.2). Each round starts a fresh cluster with two load generators: one opens its pairs without receipts, the other the same number with \`receipts=1\`, and confirms like the SDK: every ${String(CONFIRM_INTERVAL_MS)} ms one shared timer sends each connection a cumulative \`receipt\` for the highest \`seq\` it has seen, when that advanced. Their closed-loop runs alternate run by run (off first in odd rounds), so each ratio compares runs seconds apart on the same processes. CPU counts every server process of ours (both nodes, the gateway, memcached, etcd), per delivered message; "relaying" is the node(s) of the main table. Ack latency is sender's send → sender's \`ack\`: with receipts on the node acks only once the recipient's receipt covers the message, so it adds the wait for the receipt ("confirm wait": each message's time from its arrival to the receipt that covered it, at most one interval plus the load generator's timer lag) and one more trip recipient → node (→ sender's node across nodes). Delivery is send → arrival at the recipient, as in the other tables. Ratios are medians of per-round on ÷ off ratios.`,
  );
  md.push('');
  md.push('| placement | shape | size | receipts | msgs/s | CPU µs/msg (all) | relaying µs/msg | ack p50 / p99 ms | delivery p50 / p99 ms | confirm wait p50 / p99 ms | receipts/s | CPU on ÷ off | msgs/s on ÷ off |');
  md.push('| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const run of runs) {
    const off = rowsOf(results, false, run);
    const on = rowsOf(results, true, run);
    for (const [receipts, rows] of [[false, off], [true, on]] as const) {
      const m = (pick: (r: ReceiptsRow) => number, digits = 0): string => f(median(rows.map(pick)), digits);
      md.push(
        `| ${run.scenario === 'relay-1' ? 'one node' : 'across 2 nodes'} | ${shapeLabel(run.shape)} | ${run.size === 'candidate' ? '200 B' : '2 KB'} | ${receipts ? 'on' : 'off'} | ${m(rateOf)} | ${m(cpuOf, 1)} | ${m((r) => r.cpuUsPerMessage, 1)} | ${m((r) => r.ackLatencyMs.p50, 1)} / ${m((r) => r.ackLatencyMs.p99, 1)} | ${m((r) => r.latencyMs.p50, 1)} / ${m((r) => r.latencyMs.p99, 1)} | ${receipts ? `${m((r) => r.confirmWaitMs?.p50 ?? NaN, 1)} / ${m((r) => r.confirmWaitMs?.p99 ?? NaN, 1)}` : '–'} | ${receipts ? m((r) => (r.receiptsSent ?? NaN) / (results.config.seconds || NaN)) : '–'} | ${receipts ? x(ratioByRound(on, off, cpuOf)) : ''} | ${receipts ? x(ratioByRound(on, off, rateOf)) : ''} |`,
      );
    }
  }
  md.push('');
  return md;
}
