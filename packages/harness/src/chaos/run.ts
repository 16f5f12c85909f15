import { mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalCluster, waitFor } from '@messaging-server/testkit';
import type { ChaosConfig, FaultStep } from './config.js';
import { applyFault, resumeWindowMs, type FaultContext, type ScaleOutResult } from './faults.js';
import { Fleet, type Half, type Misdelivery, type SessionEvent, type TerminalClose } from './fleet.js';
import { Ledger, type LedgerTotals } from './ledger.js';
import { observe } from './observations.js';
import { NodeProxies } from './proxies.js';
import { halvesFigures, silentDeathFigures, type HalfFigures, type SilentDeathFigures } from './receipts-figures.js';
import { RoomFleet, type RoomFigures } from './rooms.js';
import { ClusterSampler, type NodeSample } from '../sampler.js';
import { percentiles, type Percentiles } from '../stats.js';

export interface TimelineEvent {
  /** Seconds after traffic started (negative: during setup). */
  at: number;
  event: string;
  detail: string;
}

export type { ScaleOutResult } from './faults.js';

export interface ChaosResult {
  config: ChaosConfig;
  startedAt: string;
  durationSeconds: number;
  timeline: TimelineEvent[];
  /** Every stream but those to users who vanished for good. */
  totals: LedgerTotals;
  /** Users who dropped off and never came back, and what their partners' sends got (contract v1.1). */
  vanished: VanishedFigures;
  /** Messages the SDKs received twice and dropped: the re-deliveries of v1.1's at-least-once and of receipts. */
  repeatsDropped: number;
  /** Issue 24: the same figures for the clients with receipts on and for the v1.1 ones (streams into each). */
  halves: Record<Half, HalfFigures>;
  /** Issue 24: the receipted clients whose network died silently, and what was sent to and by them meanwhile. */
  silentDeath: SilentDeathFigures;
  /** Issue 23: the rooms' members and what their room messages became (absent when the config has no rooms). */
  rooms?: RoomFigures;
  reconnects: Percentiles & { unfinished: number };
  /** Per phase (a fault until the next one): reconnects, errors answered, and how long sends waited for an answer. */
  reconnectsByFault: { fault: string; at: number; stats: Percentiles; errors: Record<string, number>; answerMs: Percentiles }[];
  answerMs: Percentiles;
  connectErrors: Record<string, number>;
  /** Clients that stopped for good (a terminal close code, or the SDK giving up). */
  terminalCloses: TerminalClose[];
  /** Message frames that reached a client other than their `to`. */
  misdelivered: Misdelivery[];
  scaleOut: ScaleOutResult[];
  samples: NodeSample[];
  sessions: SessionEvent[];
  clients: number;
  /** Facts worth a sentence in the report, derived from the figures. */
  observations: string[];
  /** Problems with the run itself (a fault that could not be applied, a node that did not exit 0, …). */
  anomalies: string[];
}

export interface VanishedFigures {
  users: number;
  /** ms on the run's clock; undefined when no vanish step ran. */
  at: number | undefined;
  windowMs: number;
  /** Sends to them before they vanished, and whether each was acked and arrived. */
  before: { sent: number; ackedAndReceived: number };
  /** Sends after they vanished: the answers by code, and when EXPIRED came, relative to the window's end. */
  after: { sent: number; byCode: Record<string, number>; expiredEarly: number; expiredLate: number; expiredAtMs: Percentiles };
}

export interface RunOptions {
  /** Process logs go here (one file per process). */
  logDir?: string;
  progress?: (line: string) => void;
  /**
   * Called as each fault step starts, inside that step's error handling: whatever it throws fails the step exactly
   * as a failure of the step itself would. Tests plant faults here to show the verdict catches them.
   */
  faultHook?: (step: FaultStep) => void | Promise<void>;
}

/** Clients connecting at once while the first pairs join. */
const INITIAL_CONCURRENCY = 8;

function faultLabel(step: FaultStep): string {
  if (!('downSeconds' in step)) return step.kind;
  const kill = step.kind === 'etcd-restart' && step.killDuring ? ', a node SIGKILLed meanwhile' : '';
  return `${step.kind} (${String(step.downSeconds)} s down${kill})`;
}

/** The pairs' clients (and, when the config has rooms, the rooms' members), not yet connected. */
function newFleets(
  config: ChaosConfig,
  cluster: LocalCluster,
  ledger: Ledger,
  proxies: NodeProxies,
  sinceStartMs: () => number,
  record: (event: string, detail?: string) => void,
): { fleet: Fleet; rooms: RoomFleet } {
  const fleet = new Fleet({
    proxies,
    proxiedPairs: config.faults.some((f) => f.kind === 'silent-death') ? config.silentDeathPairs : 0,
    proxiedHalf: config.silentDeathHalf ?? 'receipts',
    gatewayUrls: cluster.gateways.map((g) => g.url),
    ledger,
    clock: sinceStartMs,
    intervalMs: config.intervalMs,
    maxInflightPerStream: config.maxInflightPerStream,
    sdk: { sendTimeoutMs: config.sendTimeoutMs, pingIntervalMs: config.pingIntervalMs, pingTimeoutMs: config.pingTimeoutMs },
  });
  const rooms = new RoomFleet({
    gatewayUrls: cluster.gateways.map((g) => g.url),
    clock: sinceStartMs,
    rooms: config.rooms ?? 0,
    members: config.roomMembers ?? 3,
    intervalMs: config.roomIntervalMs ?? config.intervalMs,
    maxInflight: config.maxInflightPerStream,
    windowMs: resumeWindowMs(config),
    record,
    sdk: { sendTimeoutMs: config.sendTimeoutMs, pingIntervalMs: config.pingIntervalMs, pingTimeoutMs: config.pingTimeoutMs },
  });
  return { fleet, rooms };
}

/** What runChaos gathered while the cluster ran. */
interface RunRecord {
  config: ChaosConfig;
  setupStart: number;
  trafficStart: number;
  timeline: TimelineEvent[];
  stamps: number[];
  samples: NodeSample[];
  scaleOut: ScaleOutResult[];
  faultStarts: { fault: string; at: number }[];
  fleet: Fleet;
  rooms: RoomFleet;
  ledger: Ledger;
  vanishing: FaultContext['vanishing'];
  silentDeath: FaultContext['silentDeath'];
  memcachedBack: number[];
  anomalies: string[];
}

/** The run's figures, once the cluster has stopped. */
function chaosResult(run: RunRecord): ChaosResult {
  const { config, setupStart, trafficStart, timeline, stamps, samples, scaleOut, faultStarts, fleet, rooms, ledger, vanishing, silentDeath, memcachedBack, anomalies } = run;
  // Setup events were stamped before traffic started; express them relative to it (negative) like the rest.
  timeline.forEach((e, i) => (e.at = Math.round(((stamps[i] as number) - trafficStart) / 100) / 10));
  for (const s of scaleOut) {
    const next = faultStarts.find((f) => f.at > s.at)?.at ?? Number.POSITIVE_INFINITY;
    s.evenedOutAfter = evenedOutAfter(samples, s.nodeId, s.at, next);
  }
  const reconnectsByFault = faultStarts.map((f, i) => {
    const end = faultStarts[i + 1]?.at ?? Number.POSITIVE_INFINITY;
    const ms = fleet.reconnects.filter((r) => r.ms !== undefined && r.startedAt / 1000 >= f.at && r.startedAt / 1000 < end).map((r) => r.ms as number);
    return {
      fault: f.fault,
      at: f.at,
      stats: percentiles(ms),
      errors: ledger.errorsBetween(f.at * 1000, end * 1000),
      answerMs: percentiles(ledger.answerTimesBetween(f.at * 1000, end * 1000)),
    };
  });
  const observations = observe({ config, samples, scaleOut, sessions: fleet.sessions, reconnectsByFault, faultStarts, memcachedBack, ledger, initialConcurrency: INITIAL_CONCURRENCY });
  return {
    config,
    observations,
    startedAt: new Date(setupStart).toISOString(),
    durationSeconds: Math.round((Date.now() - setupStart) / 1000),
    timeline,
    ...fleetFigures(fleet, ledger, vanishing.users),
    vanished: vanishedFigures(fleet, ledger, vanishing, resumeWindowMs(config)),
    silentDeath: silentDeathFigures(fleet, ledger, silentDeath),
    ...(rooms.size > 0 ? { rooms: rooms.figures() } : {}),
    reconnectsByFault,
    answerMs: percentiles(ledger.answerTimesBetween(Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY)),
    scaleOut,
    samples,
    sessions: fleet.sessions,
    clients: fleet.size,
    anomalies,
  };
}

/** Runs K pairs through the fault schedule on a fresh local cluster and accounts for every message. */
export async function runChaos(config: ChaosConfig, options: RunOptions = {}): Promise<ChaosResult> {
  const progress = options.progress ?? (() => {});
  if (options.logDir) mkdirSync(options.logDir, { recursive: true });
  const setupStart = Date.now();
  let trafficStart = Number.NaN;
  const sinceStartMs = (): number => Date.now() - (Number.isNaN(trafficStart) ? setupStart : trafficStart);
  const seconds = (): number => Math.round(sinceStartMs() / 100) / 10;
  const timeline: TimelineEvent[] = [];
  const anomalies: string[] = [];
  const stamps: number[] = [];
  const record = (event: string, detail = ''): void => {
    stamps.push(Date.now());
    timeline.push({ at: seconds(), event, detail });
    progress(`[${seconds().toFixed(1).padStart(6)}s] ${event}${detail ? `: ${detail}` : ''}`);
  };

  const cluster = await LocalCluster.start({
    nodes: config.initialNodes,
    gateways: config.gateways,
    env: config.env,
    ...(options.logDir ? { logDir: options.logDir } : {}),
  });
  const ledger = new Ledger(sinceStartMs);
  const proxies = new NodeProxies();
  const { fleet, rooms } = newFleets(config, cluster, ledger, proxies, sinceStartMs, record);
  const sampler = new ClusterSampler(cluster, { intervalMs: 1000, clock: sinceStartMs, metricsWhileRegistryDown: true, dialTimeoutMs: 700, scrapeTimeoutMs: 500 });
  const scaleOut: ScaleOutResult[] = [];
  const faultStarts: { fault: string; at: number }[] = [{ fault: 'steady traffic', at: 0 }];
  let phase = 'setup';
  let ticker: NodeJS.Timeout | undefined;
  const drains: Promise<void>[] = [];
  const memcachedBack: number[] = [];
  const vanishing: FaultContext['vanishing'] = { users: [] };
  const silentDeath: FaultContext['silentDeath'] = { users: [], frozenConnections: 0 };

  try {
    record('cluster up', `${String(config.initialNodes)} nodes, ${String(config.gateways)} gateway(s)`);
    await fleet.addPairs(config.pairs, 'initial', INITIAL_CONCURRENCY);
    vanishing.users = await fleet.addVanishingPairs(config.vanishingPairs, cluster.gatewayUrl);
    await rooms.start();
    trafficStart = Date.now();
    record('traffic started', `${String(fleet.size)} clients, ${String(config.rooms ?? 0)} rooms with ${String(rooms.size)} members in all`);
    fleet.startTraffic();
    rooms.startTraffic();
    sampler.start();
    phase = 'steady';
    ticker = setInterval(() => {
      const t = ledger.totals();
      const load = Object.entries(fleet.clientView())
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([n, c]) => `${n}=${String(c)}`)
        .join(' ');
      progress(
        `[${seconds().toFixed(1).padStart(6)}s] phase=${phase} sent=${String(t.sent)} acked=${String(t.acked)} errored=${String(t.errored)} ` +
          `pending=${String(ledger.unsettled)} open=${String(fleet.openCount)}/${String(fleet.size)} | ${load}`,
      );
    }, config.progressEverySeconds * 1000);

    const faultContext: FaultContext = { config, cluster, fleet, ledger, vanishing, silentDeath, proxies, sampler, seconds, sinceStartMs, record, anomalies, scaleOut, drains, memcachedBack };
    for (const step of config.faults) {
      const wait = step.at * 1000 - sinceStartMs();
      if (wait > 0) await sleep(wait);
      phase = step.kind;
      faultStarts.push({ fault: faultLabel(step), at: seconds() });
      try {
        await options.faultHook?.(step);
        await applyFault(step, faultContext);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        anomalies.push(`${step.kind} at ${String(step.at)} s: ${message}`);
        record('fault step failed', `${step.kind}: ${message}`);
      }
      phase = `after ${step.kind}`;
    }

    const left = config.durationSeconds * 1000 - sinceStartMs();
    if (left > 0) await sleep(left);
    fleet.stopTraffic();
    rooms.stopTraffic();
    phase = 'settling';
    record('traffic stopped', 'waiting for every send to be answered');
    await waitFor(() => ledger.unsettled + rooms.ledger.unsettled === 0, { timeoutMs: config.sendTimeoutMs + 5000, intervalMs: 100, what: 'every send answered' }).catch(() => {
      anomalies.push(`${String(ledger.unsettled + rooms.ledger.unsettled)} sends still unanswered after the SDK's deadline`);
    });
    // Without receipts an ack means "handed to the recipient's connection": give the last frames a moment to arrive.
    await waitFor(() => ledger.ackedNotReceived + rooms.ledger.ackedNotReceived === 0, { timeoutMs: 5000, intervalMs: 100 }).catch(() => undefined);
    record('settled', `${String(ledger.unsettled)} unanswered, ${String(ledger.ackedNotReceived)} acked but not received`);
    await Promise.all(drains);
  } finally {
    clearInterval(ticker);
    fleet.close();
    rooms.close();
    await proxies.close();
    await sampler.stop();
    await cluster.stop();
  }

  return chaosResult({ config, setupStart, trafficStart, timeline, stamps, samples: sampler.samples, scaleOut, faultStarts, fleet, rooms, ledger, vanishing, silentDeath, memcachedBack, anomalies });
}

/** The figures the verdict judges that come from the clients alone: what they sent, received, and how they reconnected. */
export function fleetFigures(
  fleet: Fleet,
  ledger: Ledger,
  vanished: readonly string[] = [],
): Pick<ChaosResult, 'totals' | 'halves' | 'reconnects' | 'connectErrors' | 'terminalCloses' | 'misdelivered' | 'repeatsDropped'> {
  const finished = fleet.reconnects.filter((r) => r.ms !== undefined).map((r) => r.ms as number);
  const toVanished = new Set(fleet.streamsTo(vanished));
  const include = (stream: string): boolean => !toVanished.has(stream);
  return {
    totals: ledger.totals(include),
    halves: halvesFigures(fleet, ledger, include),
    repeatsDropped: fleet.repeatsDropped(),
    reconnects: { ...percentiles(finished), unfinished: fleet.reconnects.length - finished.length },
    connectErrors: fleet.connectErrors,
    terminalCloses: [...fleet.terminalCloses],
    misdelivered: [...fleet.misdelivered],
  };
}

/** Seconds until the new node's load first comes within 10 % of the other active nodes' average. */
function evenedOutAfter(samples: NodeSample[], nodeId: string, at: number, until: number): number | null {
  for (const s of samples) {
    if (s.at / 1000 < at || s.at / 1000 >= until) continue;
    const mine = s.connections[nodeId];
    const others = Object.entries(s.connections).filter(([id]) => id !== nodeId && !s.draining.includes(id)).map(([, c]) => c);
    if (mine === undefined || others.length === 0) continue;
    const average = others.reduce((a, b) => a + b, 0) / others.length;
    if (mine >= average * 0.9) return Math.round((s.at / 1000 - at) * 10) / 10;
  }
  return null;
}

/** What the vanished users' partners got: acks before the vanish, EXPIRED when the window ended after it. */
function vanishedFigures(fleet: Fleet, ledger: Ledger, vanishing: FaultContext['vanishing'], windowMs: number): VanishedFigures {
  const at = vanishing.at;
  const figures: VanishedFigures = {
    users: vanishing.users.length,
    at,
    windowMs,
    before: { sent: 0, ackedAndReceived: 0 },
    after: { sent: 0, byCode: {}, expiredEarly: 0, expiredLate: 0, expiredAtMs: percentiles([]) },
  };
  const expiredAt: number[] = [];
  for (const stream of fleet.streamsTo(vanishing.users)) {
    for (const r of ledger.recordsOf(stream)) {
      if (at === undefined || r.sentAt < at) {
        figures.before.sent += 1;
        if (r.fate === 'acked' && r.received) figures.before.ackedAndReceived += 1;
        continue;
      }
      figures.after.sent += 1;
      const code = r.fate === 'acked' ? 'ACKED' : (r.code ?? 'PENDING');
      figures.after.byCode[code] = (figures.after.byCode[code] ?? 0) + 1;
      if (code !== 'EXPIRED' || r.settledAt === undefined) continue;
      // Relative to the window's end: "at window ± 2 s", and never before it (half a second for the two clocks).
      const relative = r.settledAt - (at + windowMs);
      expiredAt.push(relative);
      if (relative < -500) figures.after.expiredEarly += 1;
      if (relative > 2000) figures.after.expiredLate += 1;
    }
  }
  figures.after.expiredAtMs = percentiles(expiredAt);
  return figures;
}
