/**
 * Issue 24: ours with receipts off and on, side by side. One fresh cluster, two load generators: one holds pairs
 * opened without receipts, the other the same number opened with `receipts=1` (confirming every 100 ms,
 * receipts.ts). Their closed-loop runs alternate run by run (off first in odd rounds), so each on ÷ off ratio
 * compares runs seconds apart on the same processes. Each run times every message's ack (send → ack at its sender).
 */
import type { LoadGen } from './driver.js';
import { receiptsRuns, shapeKey, type ReceiptsRow, type Scenario, type Shape } from './results.js';
import { besideServers, relayRowOf, untilQuiet, type RelayPlan, type ScenarioContext } from './scenarios.js';
import { cpuSecondsOf } from './driver.js';
import type { SizeName } from './payload.js';
import type { RunningSystem } from './systems.js';

export interface ReceiptsLoadGens {
  off: LoadGen;
  on: LoadGen;
}

/** Every server process of ours: both nodes, the gateway, memcached and etcd. */
function allServerPids(sys: RunningSystem): number[] {
  return [...new Set([...sys.crossPids, ...besideServers(sys).map(([, pid]) => pid)])];
}

async function measure(ctx: ScenarioContext, sys: RunningSystem, lg: LoadGen, receipts: boolean, round: number, plan: RelayPlan, size: SizeName): Promise<ReceiptsRow> {
  const all = allServerPids(sys);
  const r = await lg.relay({ mode: 'closed', size, window: plan.shape.window, warmupMs: 1000, durationMs: ctx.config.seconds * 1000, timeAcks: true }, all);
  const row: ReceiptsRow = {
    ...relayRowOf(sys, round, plan, size, r),
    receipts,
    allCpuUsPerMessage: (cpuSecondsOf(r, all) * 1e6) / Math.max(1, r.messages),
    ackLatencyMs: r.ackLatencyMs ?? { count: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN },
  };
  if (r.confirmWaitMs) row.confirmWaitMs = r.confirmWaitMs;
  if (r.receiptsSent !== undefined) row.receiptsSent = r.receiptsSent;
  ctx.results.receipts.push(row);
  const wait = row.confirmWaitMs ? `, confirm wait p50 ${row.confirmWaitMs.p50.toFixed(1)} ms, ${String(row.receiptsSent ?? 0)} receipts` : '';
  ctx.log(
    `  receipts ${receipts ? 'on ' : 'off'} ${row.scenario} ${row.shape} ${size}: ${r.rate.toFixed(0)} msg/s, ${row.allCpuUsPerMessage.toFixed(1)} µs CPU/msg (all), ack p50 ${row.ackLatencyMs.p50.toFixed(1)} ms p99 ${row.ackLatencyMs.p99.toFixed(1)} ms${wait}, elsewhere ${(row.busyElsewhereCores ?? NaN).toFixed(2)} cores${r.errors ? `, ${String(r.errors)} errors ${JSON.stringify(r.errorCodes)}` : ''}`,
  );
  return row;
}

/** The runs of one placement and shape: both sets of pairs open, then each size off and on, in turn. */
async function placementAndShape(ctx: ScenarioContext, sys: RunningSystem, lgs: ReceiptsLoadGens, round: number, scenario: Scenario, shape: Shape, sizes: SizeName[]): Promise<void> {
  const plan: RelayPlan = { placement: scenario === 'relay-1' ? 'one' : 'cross', shape, sizes, paced: false };
  ctx.log(`  receipts off and on, ${plan.placement === 'one' ? 'one node' : 'across nodes'}, ${shapeKey(shape)}: opening ${String(shape.pairs)} pairs each`);
  for (const receipts of [false, true]) {
    await (receipts ? lgs.on : lgs.off).pairs({
      target: { ...sys.target, receipts },
      count: shape.pairs,
      prefix: `rc${String(round)}${plan.placement}${shapeKey(shape)}${receipts ? 'on' : 'off'}`,
      avoidA: ['node-2'],
      avoidB: plan.placement === 'one' ? ['node-2'] : ['node-1'],
    });
  }
  const order = round % 2 === 1 ? [false, true] : [true, false];
  for (const size of sizes) {
    await untilQuiet(ctx, `receipts off and on ${scenario} ${size} runs`, async () => {
      const rows: ReceiptsRow[] = [];
      for (const receipts of order) rows.push(await measure(ctx, sys, receipts ? lgs.on : lgs.off, receipts, round, plan, size));
      return rows;
    });
  }
  await lgs.off.close();
  await lgs.on.close();
}

/** Every receipts run of the round (results.ts, receiptsRuns) on one fresh cluster. */
export async function receiptsRelays(ctx: ScenarioContext, sys: RunningSystem, lgs: ReceiptsLoadGens, round: number): Promise<void> {
  const runs = receiptsRuns(ctx.config.receiptsShapes ?? []);
  const groups = new Map<string, { scenario: Scenario; shape: Shape; sizes: SizeName[] }>();
  for (const run of runs) {
    const key = `${run.scenario} ${shapeKey(run.shape)}`;
    const group = groups.get(key) ?? { scenario: run.scenario, shape: run.shape, sizes: [] };
    group.sizes.push(run.size);
    groups.set(key, group);
  }
  for (const group of groups.values()) await placementAndShape(ctx, sys, lgs, round, group.scenario, group.shape, group.sizes);
}
