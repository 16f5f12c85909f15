/**
 * One round of the bench: every system in turn, on fresh processes: idle connections and connects on one set, the
 * relays on another. For the relays, ours and the baseline build run as one unit: both clusters up at once, each
 * with its own load generator, their closed-loop runs alternating run by run (who goes first swaps each round), so
 * each before/after ratio compares runs seconds apart rather than a minute apart on a shared machine.
 */
import type { BaselineBuild } from './baseline.js';
import { LoadGen } from './driver.js';
import type { RelayRow, SystemName } from './results.js';
import { receiptsRelays } from './receipts-scenario.js';
import { closedLoop, connectScenario, idleScenario, openPairs, pacedSteps, relayScenario, stormScenario, untilQuiet, type RelayPlan, type ScenarioContext } from './scenarios.js';
import { startBareSockJs, startBareWs, startOurs, startPeerJs, type RunningSystem } from './systems.js';

export interface RoundContext extends ScenarioContext {
  baseline: BaselineBuild | undefined;
}

function start(ctx: RoundContext, name: SystemName): Promise<RunningSystem> {
  if (name === 'ours') return startOurs();
  if (name === 'base') {
    if (!ctx.baseline) throw new Error('base needs BENCH_BASELINE');
    return startOurs({}, {}, { as: 'base', cli: ctx.baseline.cli });
  }
  if (name === 'peerjs') return startPeerJs();
  return name === 'sockjs' ? startBareSockJs() : startBareWs();
}

function label(ctx: RoundContext, name: SystemName): string {
  return name === 'base' && ctx.baseline ? `base (${ctx.baseline.ref}, ${ctx.baseline.commit.slice(0, 12)})` : name;
}

/** The systems in the order they take turns: ours and base as one unit, where ours stands. */
export function unitsOf(systems: SystemName[]): SystemName[][] {
  const paired = systems.includes('ours') && systems.includes('base');
  return systems.filter((name) => !(paired && name === 'base')).map((name) => (paired && name === 'ours' ? ['ours', 'base'] : [name]));
}

/** Relays on one node in every shape (200 B and 2 KB), then across nodes for a cluster (200 B). */
function relayPlans(ctx: RoundContext, cluster: boolean, paced: boolean): RelayPlan[] {
  const one = ctx.config.shapes.map((shape): RelayPlan => ({ placement: 'one', shape, sizes: ['candidate', 'sdp'], paced }));
  const cross = ctx.config.shapes.map((shape): RelayPlan => ({ placement: 'cross', shape, sizes: ['candidate'], paced }));
  return cluster ? [...one, ...cross] : one;
}

function recordFailure(ctx: RoundContext, name: SystemName, round: number, error: unknown): void {
  // The bench goes on: this round then has no figures for the system, which the verdict reports as missing data,
  // instead of the other rounds' medians quietly standing in for it.
  const message = error instanceof Error ? error.message : String(error);
  ctx.results.failures.push({ system: name, round, error: message });
  ctx.log(`round ${String(round)}: ${name} FAILED: ${message}`);
}

/** Runs `work` on freshly started processes of `name` and a fresh load generator, and stops them whatever happens. */
async function onFresh(ctx: RoundContext, name: SystemName, round: number, what: string, work: (sys: RunningSystem, lg: LoadGen) => Promise<void>): Promise<void> {
  ctx.log(`round ${String(round)}: starting ${label(ctx, name)} for ${what}`);
  const sys = await start(ctx, name);
  try {
    const lg = await LoadGen.start((text) => ctx.log(`  ${text}`));
    try {
      await work(sys, lg);
    } finally {
      await lg.stop();
    }
  } finally {
    await sys.stop();
  }
}

/**
 * Idle memory, then connects, on processes of their own (idle first: the RSS growth is then the connections', not
 * the relay runs' heap). The relays then start on fresh processes and a fresh load generator, so no relay run
 * carries another scenario's leftovers (10,000 sessions just closed), and ours and base relay from the same start.
 */
async function idleAndConnect(ctx: RoundContext, name: SystemName, round: number): Promise<void> {
  if (name === 'base') return; // the baseline runs only what its verdicts compare: the closed-loop relays
  await onFresh(ctx, name, round, 'idle connections and connects', async (sys, lg) => {
    await idleScenario(ctx, sys, lg, round);
    if (name === 'ours' || name === 'peerjs') await connectScenario(ctx, sys, lg, round);
  });
  if (name === 'ours') await onFresh(ctx, name, round, 'the reconnect storm', (sys, lg) => stormScenario(ctx, sys, lg, round));
}

/**
 * Issue 24: ours with receipts off and on (receipts-scenario.ts), on a fresh cluster with two load generators, each
 * counting the other as the bench's own work. After ours's relays, in either kind of round.
 */
async function receiptsUnit(ctx: RoundContext, round: number): Promise<void> {
  if ((ctx.config.receiptsShapes ?? []).length === 0) return;
  await onFresh(ctx, 'ours', round, 'receipts off and on', async (sys, off) => {
    const on = await LoadGen.start((text) => ctx.log(`  ${text}`));
    try {
      off.ignoreElsewhere([on.pid]);
      on.ignoreElsewhere([off.pid]);
      await receiptsRelays(ctx, sys, { off, on }, round);
    } finally {
      await on.stop();
    }
  });
}

/** One system alone: idle and connects, then its relays. */
async function runAlone(ctx: RoundContext, name: SystemName, round: number): Promise<void> {
  await idleAndConnect(ctx, name, round);
  await onFresh(ctx, name, round, 'relays', async (sys, lg) => {
    for (const plan of relayPlans(ctx, name === 'ours' || name === 'base', name !== 'base')) await relayScenario(ctx, sys, lg, round, plan);
  });
  if (name === 'ours') await receiptsUnit(ctx, round);
}

/**
 * Ours's idle and connects; then ours and the baseline, started together, each with its own load generator and
 * pairs, take turns run by run (ours first in odd rounds), so each compared pair of runs is seconds apart. Ours's
 * paced steps follow. A failure of base drops base for the round and spares ours.
 */
async function runWithBaseline(ctx: RoundContext, round: number): Promise<void> {
  await idleAndConnect(ctx, 'ours', round);
  await onFresh(ctx, 'ours', round, 'relays', async (ours, lg) => {
    ctx.log(`round ${String(round)}: starting ${label(ctx, 'base')} beside ours; ${round % 2 === 1 ? 'ours' : 'base'} goes first in each pair of runs`);
    let base: { sys: RunningSystem; lg: LoadGen } | undefined;
    const dropBase = async (error: unknown): Promise<void> => {
      recordFailure(ctx, 'base', round, error);
      const dropped = base;
      base = undefined;
      await dropped?.lg.stop();
      await dropped?.sys.stop();
    };
    const startBase = async (): Promise<void> => {
      const sys = await start(ctx, 'base');
      try {
        base = { sys, lg: await LoadGen.start((text) => ctx.log(`  ${text}`)) };
      } catch (error) {
        await sys.stop();
        throw error;
      }
    };
    await startBase().catch(dropBase);
    if (base) {
      // Each cluster idles while the other is measured: that is the bench's own work, not someone else's.
      const all = (sys: RunningSystem, other: LoadGen): number[] => [...Object.values(sys.serverPids), ...Object.values(sys.otherPids), other.pid];
      lg.ignoreElsewhere(all(base.sys, base.lg));
      base.lg.ignoreElsewhere(all(ours, lg));
    }
    try {
      for (const plan of relayPlans(ctx, true, true)) {
        await openPairs(ctx, ours, lg, round, plan);
        if (base) await openPairs(ctx, base.sys, base.lg, round, plan).catch(dropBase);
        let max = Number.NaN;
        for (const size of plan.sizes) {
          // The pair is measured again as a whole when either run was disturbed, so the two stay seconds apart.
          await untilQuiet(ctx, `ours and base ${size} runs`, async () => {
            const rows: RelayRow[] = [];
            for (const turn of round % 2 === 1 ? ['ours', 'base'] : ['base', 'ours']) {
              if (turn === 'ours') {
                const row = await closedLoop(ctx, ours, lg, round, plan, size);
                if (size === 'candidate') max = row.rate;
                rows.push(row);
              } else if (base) {
                const row = await closedLoop(ctx, base.sys, base.lg, round, plan, size).catch(dropBase);
                if (row) rows.push(row);
              }
            }
            return rows;
          });
        }
        if (base) await base.lg.close().catch(dropBase);
        await pacedSteps(ctx, ours, lg, round, plan, max);
        await lg.close();
      }
    } finally {
      await base?.lg.stop();
      await base?.sys.stop();
    }
  });
  await receiptsUnit(ctx, round);
}

/** Runs one unit of a round; a failure is recorded and the round goes on. */
export async function runUnit(ctx: RoundContext, unit: SystemName[], round: number): Promise<void> {
  const [first] = unit;
  if (first === undefined) return;
  // In the paired unit, base's own failures are recorded as base's; anything else stopped ours (and base's turns with it).
  await (unit.length > 1 ? runWithBaseline(ctx, round) : runAlone(ctx, first, round)).catch((error: unknown) => recordFailure(ctx, first, round, error));
}
