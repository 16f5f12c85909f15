/**
 * `make scale`: 20 node processes, 2 gateways, etcd and memcached on this machine; 10,000 idle clients, 500 active
 * pairs and 500 rooms of 4; two minutes in which nodes join and drain. Writes docs/scale.md, scale.json and scale.svg.
 *
 *   node --conditions=source --import tsx packages/harness/src/scale.ts [--tiny] [--out DIR]
 *   node --conditions=source --import tsx packages/harness/src/scale.ts --render [--out DIR]   rebuilds .md/.svg from scale.json
 *
 * Exits 1 when a figure is missing or acceptance 5 fails (every gateway allocates to a joined node within 1 s at
 * p99; the largest settled node within 15 % of the mean; the whole run under 5 minutes) or issue 23's acceptance 7
 * does (under 5 % of room messages cross nodes on a stable cluster).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { figures } from './scale/analysis.js';
import { FULL, TINY } from './scale/config.js';
import { raiseOpenFilesLimit } from './scale/open-files.js';
import { writeReport } from './scale/report.js';
import { runScale, type ScaleResult } from './scale/run.js';
import { verdict } from './scale/verdict.js';

const started = Date.now();
function say(line: string): void {
  process.stdout.write(`[scale ${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${line}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { tiny: { type: 'boolean' }, render: { type: 'boolean' }, out: { type: 'string' } } });
  const out = values.out ?? 'docs';
  let result: ScaleResult;
  if (values.render) {
    result = JSON.parse(readFileSync(join(out, 'scale.json'), 'utf8')) as ScaleResult;
  } else {
    const config = values.tiny ? TINY : FULL;
    const openFiles = raiseOpenFilesLimit();
    const needed = config.idleClients + 2 * config.pairs + config.rooms * config.membersPerRoom + 1000;
    if (openFiles < needed) throw new Error(`open-files limit is ${String(openFiles)}, the run needs about ${String(needed)} (ulimit -n)`);
    say(`scale run "${config.name}": ${String(config.initialNodes)} nodes, ${String(config.gateways)} gateways, ${config.idleClients.toLocaleString('en')} idle clients, ${String(config.pairs)} pairs, ${String(config.rooms)} rooms of ${String(config.membersPerRoom)}, ${String(config.trafficSeconds)} s of joins and drains; open files ${String(openFiles)}; process logs in .run/scale-logs/`);
    result = await runScale(config, { logDir: '.run/scale-logs', progress: say });
  }
  const f = figures(result);
  const path = writeReport(result, f, out);
  const p = f.propagation.delays;
  say(`join → first allocation on every gateway: p50 ${String(p.p50)} ms, p99 ${String(p.p99)} ms (${String(p.count)} joins × gateways)`);
  if (f.spread.worst) say(`spread: the largest settled node was at most ${(f.spread.worst.over * 100).toFixed(1)} % over the mean`);
  const c = result.load.latency.crossNode;
  say(`cross-node latency: p50 ${c.p50?.toFixed(1) ?? '–'} ms, p99 ${c.p99?.toFixed(1) ?? '–'} ms over ${String(c.count)} messages`);
  const stable = f.rooms?.windows.find((w) => w.name === 'rooms')?.rooms.share;
  const pairsShare = f.rooms?.windows.find((w) => w.name === 'pairs')?.pairs.share;
  const asPct = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(1)} %`);
  say(`rooms: room messages crossed nodes ${asPct(stable)} on a stable cluster (pairs ${asPct(pairsShare)}), ${asPct(f.rooms?.phase?.rooms.share)} through joins and drains; nodes' CPU per message: pair ${f.rooms?.cpuPerPairMessageUs?.toFixed(0) ?? '–'} µs, room ${f.rooms?.cpuPerRoomMessageUs?.toFixed(0) ?? '–'} µs`);
  say(`report: ${path} (run took ${result.durationSeconds.toFixed(0)} s)`);
  const failures = verdict(result, f);
  for (const failure of failures) process.stderr.write(`scale: FAILED: ${failure}\n`);
  if (failures.length > 0) process.exitCode = 1;
}

main().then(
  () => process.exit(),
  (error: unknown) => {
    process.stderr.write(`scale: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
