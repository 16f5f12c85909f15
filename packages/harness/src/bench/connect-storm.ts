/**
 * `node --conditions=source --import tsx packages/harness/src/bench/connect-storm.ts`: only the bench's connect and reconnect-storm
 * scenarios (the same functions `make bench` runs), for work on the connect path without the relay rounds. Each
 * round: ours's connects on fresh processes, PeerJS server's connects on fresh processes, then the storm on a
 * fresh cluster. Prints the medians over rounds and the median of per-round ratios (BENCH_ROUNDS, default 3;
 * BENCH_CONNECTS, BENCH_STORM_CLIENTS as in `make bench`).
 */
import { readConfig } from './config.js';
import { LoadGen } from './driver.js';
import { emptyResults } from './results.js';
import { connectScenario, stormScenario, type ScenarioContext } from './scenarios.js';
import { median } from '../stats.js';
import { startOurs, startPeerJs, TMP, type RunningSystem } from './systems.js';

function log(text: string): void {
  process.stdout.write(`[connect-storm] ${text}\n`);
}

async function onFresh(start: () => Promise<RunningSystem>, work: (sys: RunningSystem, lg: LoadGen) => Promise<void>): Promise<void> {
  const sys = await start();
  try {
    const lg = await LoadGen.start(log);
    try {
      await work(sys, lg);
    } finally {
      await lg.stop();
    }
  } finally {
    await sys.stop();
  }
}

async function main(): Promise<void> {
  const config = readConfig(process.env, `${TMP}/connect-storm`);
  const results = emptyResults(config, { cpus: 0, cpuModel: '', node: process.version, platform: process.platform, memoryGiB: 0 });
  const ctx: ScenarioContext = { config, results, log };
  for (let round = 1; round <= config.rounds; round += 1) {
    log(`round ${String(round)}`);
    await onFresh(() => startOurs(), (sys, lg) => connectScenario(ctx, sys, lg, round));
    await onFresh(() => startPeerJs(), (sys, lg) => connectScenario(ctx, sys, lg, round));
    await onFresh(() => startOurs(), (sys, lg) => stormScenario(ctx, sys, lg, round));
  }
  const rate = (system: string, round: number): number => results.connect.find((r) => r.system === system && r.round === round)?.rate ?? Number.NaN;
  const rounds = Array.from({ length: config.rounds }, (_, i) => i + 1);
  const ratios = rounds.map((round) => rate('ours', round) / rate('peerjs', round));
  log(`connects/s per round: ours ${rounds.map((r) => rate('ours', r).toFixed(0)).join(', ')}; PeerJS ${rounds.map((r) => rate('peerjs', r).toFixed(0)).join(', ')}; ratio ${ratios.map((x) => x.toFixed(3)).join(', ')}`);
  log(`median: ours ${median(rounds.map((r) => rate('ours', r))).toFixed(0)}/s, PeerJS ${median(rounds.map((r) => rate('peerjs', r))).toFixed(0)}/s, ratio ${median(ratios).toFixed(3)} ×`);
  const storms = results.storm.map((s) => s.lastWelcomeMs);
  log(`storm last welcome (ms after the kill) per round: ${storms.join(', ')}; median ${median(storms).toFixed(0)} ms; reconnected ${results.storm.map((s) => `${String(s.reconnected)}/${String(s.clients)}`).join(', ')}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`connect-storm failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
