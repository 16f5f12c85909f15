/**
 * `make bench`: ours, PeerJS server and a bare `ws` relay, side by side, on loopback, in one invocation; with
 * BENCH_BASELINE=<git ref>, also ours built from that ref (`base`), for before/after in the same rounds.
 * Rounds interleave the systems (the order rotates each round) and the report uses per-round medians, so the
 * ratios hold on a shared, noisy machine; ours and base run side by side, scenario by scenario (packages/harness/src/bench/rounds.ts). Every relay scenario runs in each shape of BENCH_SHAPES (default 50 pairs
 * × 8 in flight and 200 pairs × 4). Writes docs/benchmarks.{md,json,svg}. Knobs: packages/harness/src/bench/config.ts.
 * `--render` rebuilds benchmarks.md/.svg from benchmarks.json without running anything.
 * Profiling: packages/harness/src/bench/profile.ts.
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { buildBaseline } from './baseline.js';
import { readConfig } from './config.js';
import { renderReport } from './report.js';
import { emptyResults, fromSaved, type BenchResults, type SavedResults, type SystemName } from './results.js';
import { runUnit, unitsOf, type RoundContext } from './rounds.js';
import { judge } from './verdict.js';
import { ROOT, TMP } from './systems.js';

const render = process.argv.includes('--render');
const { baselineRef, ...config } = ((): ReturnType<typeof readConfig> => {
  try {
    return readConfig(process.env, `${ROOT}docs`);
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
})();

const started = Date.now();
function log(text: string): void {
  const t = ((Date.now() - started) / 1000).toFixed(0).padStart(4);
  process.stdout.write(`[bench ${t}s] ${text}\n`);
}

// 10,000 idle connections need more descriptors than a default shell allows, in the servers and the load generator.
// Children inherit the limit: raise it to 65536 where allowed (root with CAP_SYS_RESOURCE), else to the hard limit.
function raiseOpenFilesLimit(): number {
  const pid = String(process.pid);
  const read = (): number[] =>
    execFileSync('prlimit', ['--pid', pid, '--nofile', '--raw', '--noheadings', '--output', 'SOFT,HARD']).toString().trim().split(/\s+/).map(Number);
  try {
    execFileSync('prlimit', ['--pid', pid, '--nofile=65536:65536'], { stdio: 'ignore' });
  } catch {
    try {
      const hard = read()[1] ?? 0;
      execFileSync('prlimit', ['--pid', pid, `--nofile=${String(hard)}:${String(hard)}`], { stdio: 'ignore' });
    } catch {
      // keep what we have; checked below
    }
  }
  try {
    return read()[0] ?? 0;
  } catch {
    return 0;
  }
}
const openFiles = render ? 0 : raiseOpenFilesLimit();
if (!render && openFiles < Math.max(...config.idle) + 2000) {
  log(`open-files limit is ${String(openFiles)}: the idle scenario needs more than ${String(Math.max(...config.idle) + 2000)} (ulimit -n)`);
}

const results = emptyResults(config, {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  memoryGiB: Math.round(Number(execFileSync('awk', ['/MemTotal/ {print $2}', '/proc/meminfo']).toString()) / 1048576),
});

async function main(): Promise<void> {
  log(`machine: ${String(results.machine.cpus)} × ${results.machine.cpuModel}, node ${results.machine.node}, open files ${String(openFiles)}; config ${JSON.stringify(config)}`);
  // Built before the clock of any measurement starts; a baseline that cannot be built fails the run here.
  mkdirSync(config.out, { recursive: true }); // BENCH_OUT may name a directory nobody made yet
  const baseline = baselineRef === undefined ? undefined : await buildBaseline(baselineRef, ROOT, TMP, log);
  if (baseline) config.baseline = { ref: baseline.ref, commit: baseline.commit };
  const ctx: RoundContext = { config, results, log, baseline };
  const units = unitsOf(config.systems);
  for (let round = 1; round <= config.rounds; round += 1) {
    for (let i = 0; i < units.length; i += 1) await runUnit(ctx, units[(i + round - 1) % units.length] as SystemName[], round);
  }
  results.durationSeconds = (Date.now() - started) / 1000;
  const { markdown, svg, summary } = renderReport(results);
  writeFileSync(`${config.out}/benchmarks.json`, `${JSON.stringify({ ...results, summary }, null, 2)}\n`);
  writeFileSync(`${config.out}/benchmarks.svg`, svg);
  writeFileSync(`${config.out}/benchmarks.md`, markdown);
  log(`wrote ${config.out}/benchmarks.{md,json,svg} in ${results.durationSeconds.toFixed(0)} s`);
  const { failures } = judge(results);
  for (const failure of failures) process.stderr.write(`bench: FAILED: ${failure}\n`);
  if (failures.length > 0) process.exitCode = 1;
  else log('verdict: every target met, on valid data from every round');
}

/** `index.ts --render`: rebuilds the Markdown and SVG from docs/benchmarks.json (after editing analysis.md). */
function renderOnly(): void {
  const saved = fromSaved(JSON.parse(readFileSync(`${config.out}/benchmarks.json`, 'utf8')) as SavedResults);
  const { markdown, svg } = renderReport(saved);
  writeFileSync(`${config.out}/benchmarks.svg`, svg);
  writeFileSync(`${config.out}/benchmarks.md`, markdown);
  log(`rendered ${config.out}/benchmarks.{md,svg} from benchmarks.json`);
}

(render ? Promise.resolve().then(renderOnly) : main()).then(
  () => process.exit(process.exitCode ?? 0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
