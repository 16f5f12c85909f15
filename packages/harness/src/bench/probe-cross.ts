/**
 * `node --conditions=source --import tsx packages/harness/src/bench/probe-cross.ts`: a quick look at what the hop between nodes
 * costs, for trying a change to the cross-node path in a minute instead of a whole `make bench`. Each round starts
 * a fresh cluster for a closed-loop 200 B relay on one node, then another for the same relay across two nodes, and
 * prints msgs/s, server CPU per message, load-generator CPU per message and, across nodes, how many messages one
 * delivery request carried (from the nodes' own metrics). Compare builds by running it in two worktrees one after
 * the other on a quiet machine; it is not a verdict (that is `make bench`).
 *
 * BENCH_PAIRS (50), BENCH_WINDOW (8 in flight per pair), BENCH_ROUNDS (2), BENCH_SECONDS (5).
 */
import { cpuSecondsOf, LoadGen } from './driver.js';
import { startOurs } from './systems.js';

const pairs = Number(process.env['BENCH_PAIRS'] ?? 50);
const window = Number(process.env['BENCH_WINDOW'] ?? 8);
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 2);
const seconds = Number(process.env['BENCH_SECONDS'] ?? 5);

/** Delivery requests a node sent to its peers, from its relay-latency histogram's count. */
async function deliveryRequests(internalUrl: string): Promise<number> {
  const text = await (await fetch(`${internalUrl}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  return Number(/^msg_relay_latency_seconds_count\S* (\d+)/m.exec(text)?.[1] ?? NaN);
}

async function probe(cross: boolean): Promise<string> {
  const system = await startOurs();
  const loadgen = await LoadGen.start(() => undefined);
  try {
    await loadgen.pairs({ target: system.target, count: pairs, prefix: 'probe', avoidA: ['node-2'], avoidB: cross ? ['node-1'] : ['node-2'] });
    const pids = cross ? system.crossPids : system.relayPids;
    const r = await loadgen.relay({ mode: 'closed', size: 'candidate', window, warmupMs: 1000, durationMs: seconds * 1000 }, pids);
    const serverCpu = cpuSecondsOf(r, pids);
    const perMessage = (cpuSeconds: number): string => ((cpuSeconds * 1e6) / r.messages).toFixed(1);
    let line = `${cross ? 'across nodes' : 'one node    '}  ${r.rate.toFixed(0).padStart(6)} msgs/s  server ${perMessage(serverCpu)} µs/msg`;
    line += `  load generator ${((r.loadgenCpu * 1e6) / r.rate).toFixed(1)} µs/msg`;
    if (cross) {
      const requests = (await deliveryRequests(system.cluster.node('node-1').internalUrl)) + (await deliveryRequests(system.cluster.node('node-2').internalUrl));
      // Counted over the whole run (warm-up and drain included), like the requests.
      line += `  ${(r.sent / requests).toFixed(1)} messages per delivery request`;
    }
    if (r.errors > 0 || r.lost > 0) line += `  (${String(r.errors)} errors, ${String(r.lost)} lost: does not count)`;
    return line;
  } finally {
    await loadgen.close();
    await loadgen.stop();
    await system.stop();
  }
}

async function main(): Promise<void> {
  process.stdout.write(`[probe] ${String(pairs)} pairs × ${String(window)} in flight, 200 B, ${String(seconds)} s per run, ${String(rounds)} round(s)\n`);
  for (let round = 1; round <= rounds; round++) {
    for (const cross of [false, true]) process.stdout.write(`[probe] round ${String(round)}  ${await probe(cross)}\n`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`probe failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
