/**
 * `make chaos`: K pairs of SDK clients exchange numbered messages while nodes are added, drained and SIGKILLed and
 * etcd and memcached restart, and a few receipted clients' networks die silently (no FIN, no RST) at a proxy of the
 * run's own; every message must end acked-and-delivered or errored, never silently lost. Odd pairs run with receipts
 * on (contract v1.2), even pairs off (v1.1); each half is held to that and reported apart.
 *
 *   node --conditions=source --import tsx packages/harness/src/chaos.ts [--short] [--pairs K] [--out DIR]
 *
 * Writes DIR/chaos-report.md, chaos-report.json and chaos-sessions.svg (DIR defaults to docs/). Exits 1 when the
 * verdict (chaos/verdict.ts) finds anything: a message silently lost, delivered twice, out of order, misdelivered or
 * never sent; a fault step that threw or a drain that did not exit 0; a scale-out wave missing or too small; a
 * client closed for good; a reconnect that never finished.
 */
import { parseArgs } from 'node:util';
import { FULL, SHORT } from './chaos/config.js';
import { writeReport } from './chaos/report.js';
import { runChaos } from './chaos/run.js';
import { verdict } from './chaos/verdict.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { short: { type: 'boolean' }, pairs: { type: 'string' }, out: { type: 'string' } } });
  const base = values.short ? SHORT : FULL;
  const pairs = values.pairs === undefined ? base.pairs : Number(values.pairs);
  if (!Number.isInteger(pairs) || pairs < 1) throw new Error(`--pairs must be a positive integer, got ${String(values.pairs)}`);
  const config = { ...base, pairs };
  const out = values.out ?? 'docs';
  process.stdout.write(`chaos run "${config.name}": ${String(config.pairs)} pairs, ${String(config.durationSeconds)} s of traffic; process logs in .run/chaos-logs/\n`);
  const result = await runChaos(config, { logDir: '.run/chaos-logs', progress: (line) => process.stdout.write(line + '\n') });
  const path = writeReport(result, out);
  const t = result.totals;
  const r = result.reconnects;
  process.stdout.write(
    `sent ${String(t.sent)}, acked ${String(t.acked)}, errored ${String(t.errored)} ${JSON.stringify(t.erroredByCode)}, silently lost ${String(t.silentlyLost)}\n` +
      `reconnects ${String(r.count)}: p50 ${String(r.p50)} ms, p99 ${String(r.p99)} ms, max ${String(r.max)} ms\n` +
      `scale-out: ${result.scaleOut.map((s) => `${s.nodeId} took ${String(s.onNewNode)}/${String(s.waveSize)}`).join(', ')}\n` +
      `report: ${path}\n`,
  );
  const failures = verdict(result);
  for (const f of failures) process.stderr.write(`chaos: FAILED: ${f}\n`);
  if (failures.length > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`chaos: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
