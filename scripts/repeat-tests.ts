/**
 * `make repeat-tests RUNS=10 LOAD=3`: runs the test suite RUNS times in a row, with the benchmark's load generator
 * relaying beside it during LOAD of those runs (spread over the series), and prints pass/fail counts and timings
 * per run. Run it under the shared lock, like any run that starts processes:
 *
 *   flock /tmp/heavy.lock make repeat-tests RUNS=10 LOAD=3
 *
 *   node --conditions=source --import tsx scripts/repeat-tests.ts [--runs N] [--load K] [--rate MSGS_PER_S]
 *     [--command 'make test'] [--logs DIR]
 *
 * The load: a bare `ws` relay (packages/harness/src/bench/bare-ws-relay.ts) and the bench's load generator with 50 pairs,
 * paced at --rate messages/s (default 20,000: about a third of a core for both) in 5 s measurement windows for as
 * long as the run lasts. Each run's output goes to DIR/run-<i>.log (default .run/repeat). Exits 1 when any run failed.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LoadGen } from '@messaging-server/harness/bench/driver';
import { startBareWs, type RunningSystem } from '@messaging-server/harness/bench/systems';

interface RunResult {
  run: number;
  load: boolean;
  exitCode: number | null;
  passed: number | undefined;
  failed: number | undefined;
  seconds: number;
  /** Delivered msgs/s of each load window during the run; empty without load. */
  loadRates: number[];
  loadProblems: string[];
}

function log(text: string): void {
  process.stdout.write(`[repeat] ${text}\n`);
}

/** Which runs get the load: K of N, spread evenly (for 10 and 3: runs 4, 7 and 10). */
function loadedRuns(runs: number, loaded: number): Set<number> {
  const chosen = new Set<number>();
  for (let i = 1; i <= runs; i += 1) if (Math.floor((i * loaded) / runs) > Math.floor(((i - 1) * loaded) / runs)) chosen.add(i);
  return chosen;
}

/** Runs `command` through the shell, teeing its output to `logFile`; resolves with its exit code and summary line. */
function runSuite(command: string, logFile: string): Promise<{ exitCode: number | null; passed?: number; failed?: number }> {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(logFile);
    const child = spawn('bash', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (chunk: Buffer): void => {
      out.write(chunk);
      tail = (tail + chunk.toString()).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => {
      out.end();
      const summaries = [...tail.matchAll(/^(\d+) passed, (\d+) failed/gm)];
      const last = summaries.at(-1);
      resolve(last ? { exitCode: code, passed: Number(last[1]), failed: Number(last[2]) } : { exitCode: code });
    });
  });
}

/** The bench's load generator relaying through a bare ws relay until `stop()`; returns each window's rate. */
async function startLoad(rate: number): Promise<{ stop(): Promise<{ rates: number[]; problems: string[] }> }> {
  const sys: RunningSystem = await startBareWs();
  const lg = await LoadGen.start((text) => log(`load: ${text}`));
  const rates: number[] = [];
  const problems: string[] = [];
  let running = true;
  const loop = (async () => {
    await lg.pairs({ target: sys.target, count: 50, prefix: 'repeat' });
    while (running) {
      const r = await lg.relay({ mode: 'paced', size: 'candidate', rate, warmupMs: 200, durationMs: 5000 }, sys.relayPids);
      rates.push(r.rate);
      if (r.lost > 0 || r.errors > 0 || r.skipped > 0) problems.push(`window ${String(rates.length)}: lost ${String(r.lost)}, errors ${String(r.errors)}, skipped ${String(r.skipped)}`);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop.catch((error: unknown) => problems.push(`load stopped early: ${error instanceof Error ? error.message : String(error)}`));
      await lg.stop();
      await sys.stop();
      return { rates, problems };
    },
  };
}

function formatRun(r: RunResult): string {
  const verdict = r.exitCode === 0 ? 'PASS' : 'FAIL';
  const counts = r.passed === undefined ? 'no summary line' : `${String(r.passed)} passed, ${String(r.failed)} failed`;
  const minutes = `${String(Math.floor(r.seconds / 60))}m${String(Math.round(r.seconds % 60)).padStart(2, '0')}s`;
  const rates = r.loadRates.length > 0 ? ` | load: ${String(r.loadRates.length)} windows, ${Math.round(Math.min(...r.loadRates))}-${Math.round(Math.max(...r.loadRates))} msgs/s delivered` : '';
  const problems = r.loadProblems.length > 0 ? ` (load problems: ${r.loadProblems.join('; ')})` : '';
  return `run ${String(r.run).padStart(2)}: ${verdict} ${counts} in ${minutes} (exit ${String(r.exitCode)})${r.load ? rates : ' | no load'}${problems}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string' }, load: { type: 'string' }, rate: { type: 'string' }, command: { type: 'string' }, logs: { type: 'string' } },
  });
  const runs = Number(values.runs ?? 10);
  const loaded = Number(values.load ?? 3);
  const rate = Number(values.rate ?? 20_000);
  const command = values.command ?? 'make test';
  const logs = values.logs ?? '.run/repeat';
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${String(values.runs)}`);
  if (!Number.isInteger(loaded) || loaded < 0 || loaded > runs) throw new Error(`--load must be an integer from 0 to --runs, got ${String(values.load)}`);
  if (!(rate > 0)) throw new Error(`--rate must be positive, got ${String(values.rate)}`);
  mkdirSync(logs, { recursive: true });
  const withLoad = loadedRuns(runs, loaded);
  log(`${String(runs)} runs of '${command}', load on run(s) ${[...withLoad].join(', ') || 'none'} (bare ws relay paced at ${String(rate)} msgs/s); logs in ${logs}/`);
  const results: RunResult[] = [];
  for (let run = 1; run <= runs; run += 1) {
    const load = withLoad.has(run);
    const logFile = `${logs}/run-${String(run)}.log`;
    log(`run ${String(run)}/${String(runs)}${load ? ' with load' : ''}: ${command} (output in ${logFile})`);
    const generator = load ? await startLoad(rate) : undefined;
    const started = Date.now();
    const outcome = await runSuite(command, logFile);
    const seconds = (Date.now() - started) / 1000;
    const loadResult = generator ? await generator.stop() : { rates: [], problems: [] };
    const result: RunResult = { run, load, exitCode: outcome.exitCode, passed: outcome.passed, failed: outcome.failed, seconds, loadRates: loadResult.rates, loadProblems: loadResult.problems };
    results.push(result);
    log(formatRun(result));
  }
  const passedRuns = results.filter((r) => r.exitCode === 0).length;
  process.stdout.write(`\n${results.map(formatRun).join('\n')}\n\n`);
  process.stdout.write(`${String(passedRuns)} of ${String(runs)} runs passed (${String(results.filter((r) => r.load).length)} with load)\n`);
  if (passedRuns !== runs) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`repeat-tests: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
