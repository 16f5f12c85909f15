/** What one bench run records (docs/benchmarks.json): its configuration and one row per measurement. */
import type { LatencySummary } from './loadgen.js';
import type { SizeName } from './payload.js';

/** `base` is ours built from an older commit (BENCH_BASELINE), run beside ours in the same rounds. */
export type SystemName = 'ours' | 'base' | 'peerjs' | 'ws' | 'sockjs';
export const SYSTEM_NAMES: readonly SystemName[] = ['ours', 'base', 'peerjs', 'ws', 'sockjs'];

export type Scenario = 'relay-1' | 'relay-2';

/** A relay shape: how many pairs, and how many messages each pair keeps in flight in a closed-loop run (half each way). */
export interface Shape {
  pairs: number;
  window: number;
  /** The paced steps run in this shape, as fractions of its closed-loop maximum. */
  fractions: number[];
}

/** The key rows carry: `50x8` for 50 pairs with 8 in flight. */
export function shapeKey(shape: { pairs: number; window: number }): string {
  return `${String(shape.pairs)}x${String(shape.window)}`;
}

export function shapeLabel(shape: { pairs: number; window: number }): string {
  return `${String(shape.pairs)} pairs × ${String(shape.window)}`;
}

export interface BenchConfig {
  rounds: number;
  shapes: Shape[];
  /** Seconds of each closed-loop run (after 1 s of warm-up) and of each paced step (after 0.5 s). */
  seconds: number;
  sweepSeconds: number;
  idle: number[];
  connects: number;
  connectConcurrency: number;
  /** Idle clients on the node the storm scenario SIGKILLs. */
  stormClients: number;
  /** Ours with receipts off and on, side by side (issue 24): these shapes, one node and across (BENCH_RECEIPTS_SHAPES). */
  receiptsShapes?: Shape[];
  systems: SystemName[];
  /** The git ref BENCH_BASELINE named, and the commit it resolved to; absent when no baseline was asked for. */
  baseline?: { ref: string; commit: string };
  out: string;
  quick: boolean;
}

export interface RelayRow {
  system: SystemName;
  scenario: Scenario;
  /** shapeKey() of the shape this run used. */
  shape: string;
  size: SizeName;
  round: number;
  rate: number;
  latencyMs: LatencySummary;
  cpuUsPerMessage: number;
  serverCpuCores: number;
  /** write()/writev() and read() system calls of the server processes per delivered message. */
  writesPerMessage: number;
  readsPerMessage: number;
  loadgenCpuCores: number;
  errors: number;
  errorCodes: Record<string, number>;
  /** Messages sent over the run, and how many of them never arrived. */
  sent: number;
  lost: number;
  otherCpuUsPerMessage: Record<string, number>;
  /** Cores the machine spent on other people's work during the window (see driver.ts); absent in older runs. */
  busyElsewhereCores?: number;
}

/**
 * A closed-loop run of ours in the receipts scenario (issue 24): the same cluster and pairs as its twin run with the
 * other setting, seconds apart. `cpuUsPerMessage` counts the relaying node(s) as in RelayRow; `allCpuUsPerMessage`
 * every server process of ours (both nodes, the gateway, memcached, etcd), which the receipts verdict judges.
 */
export interface ReceiptsRow extends RelayRow {
  receipts: boolean;
  allCpuUsPerMessage: number;
  /** Sender's send → sender's `ack`. */
  ackLatencyMs: LatencySummary;
  /** Receipts on: each message's wait at the recipient from its arrival to the receipt that covered it. */
  confirmWaitMs?: LatencySummary;
  /** Receipts on: receipts the load generator sent during the window. */
  receiptsSent?: number;
}

export interface SweepRow {
  system: SystemName;
  scenario: Scenario;
  shape: string;
  round: number;
  fraction: number;
  targetRate: number;
  rate: number;
  latencyMs: LatencySummary;
  skipped: number;
  errors: number;
  errorCodes: Record<string, number>;
  sent: number;
  lost: number;
  busyElsewhereCores?: number;
}

export interface ConnectRow {
  system: SystemName;
  round: number;
  rate: number;
  latencyMs: LatencySummary;
  completed: number;
  failed: number;
  firstError?: string;
  busyElsewhereCores?: number;
}

export interface IdleRow {
  system: SystemName;
  round: number;
  /** Connections asked for, connections open when measured, and connects that failed on the way. */
  target: number;
  connections: number;
  failed: number;
  /** The processes summed into the RSS figures: the whole server side (for ours every node and the gateway). */
  serverProcesses: string[];
  baseKiB: number;
  rssKiB: number;
  perConnectionKiB: number;
  /** The same growth per connection, process by process (one reading each, so they need not add up exactly). */
  byProcess?: Record<string, number>;
  /** Growth per connection of processes reported beside the server side (memcached's session records). */
  others: Record<string, number>;
}

/** A node holding idle clients is SIGKILLed: how long until the last of them is welcomed on another node. */
export interface StormRow {
  system: SystemName;
  round: number;
  clients: number;
  reconnected: number;
  failed: number;
  firstError?: string;
  /** From the SIGKILL to the last welcome elsewhere. */
  lastWelcomeMs: number;
  /** Each client's time from its close to its welcome elsewhere. */
  latencyMs: LatencySummary;
}

export interface BenchResults {
  startedAt: string;
  machine: { cpus: number; cpuModel: string; node: string; platform: string; memoryGiB: number };
  config: BenchConfig;
  relay: RelayRow[];
  sweep: SweepRow[];
  connect: ConnectRow[];
  idle: IdleRow[];
  storm: StormRow[];
  /** Ours with receipts off and on (issue 24); absent in older runs. */
  receipts: ReceiptsRow[];
  /** System runs that threw; their rounds have no figures, which fails every target that needs them. */
  failures: { system: SystemName; round: number; error: string }[];
  durationSeconds: number;
}

/** A run's results before its first round: every table empty. */
export function emptyResults(config: BenchConfig, machine: BenchResults['machine']): BenchResults {
  return { startedAt: new Date().toISOString(), machine, config, relay: [], sweep: [], connect: [], idle: [], storm: [], receipts: [], failures: [], durationSeconds: 0 };
}

/** benchmarks.json as older harnesses wrote it: one relay shape in `pairs`/`window`, rows without a shape, no failures. */
export type SavedResults = Omit<BenchResults, 'config' | 'failures'> & {
  config: Omit<BenchConfig, 'shapes'> & { shapes?: Shape[]; pairs?: number; window?: number; fractions?: number[] };
  failures?: BenchResults['failures'];
  storm?: StormRow[];
  receipts?: ReceiptsRow[];
};

/** Reads a saved run, giving an older run's rows the one shape it ran; anything still missing stays missing. */
export function fromSaved(saved: SavedResults): BenchResults {
  const { pairs, window, fractions, shapes, ...rest } = saved.config;
  const legacy = shapes === undefined && pairs !== undefined && window !== undefined ? { pairs, window, fractions: fractions ?? [] } : undefined;
  const config: BenchConfig = { ...rest, shapes: shapes ?? (legacy ? [legacy] : []) };
  const shape = legacy ? shapeKey(legacy) : '';
  return {
    ...saved,
    config,
    relay: saved.relay.map((r) => ({ ...r, shape: r.shape ?? shape })),
    sweep: saved.sweep.map((r) => ({ ...r, shape: r.shape ?? shape })),
    failures: saved.failures ?? [],
    storm: saved.storm ?? [],
    receipts: saved.receipts ?? [],
  };
}

/**
 * The receipts scenario's closed-loop runs (issue 24), each made with receipts off and on: 200 B on one node and
 * across nodes in every receipts shape, and 2 KB on one node in the first. The runner and the verdict both read this.
 */
export function receiptsRuns(shapes: Shape[]): { scenario: Scenario; shape: Shape; size: SizeName }[] {
  return shapes.flatMap((shape, i) => [
    { scenario: 'relay-1' as const, shape, size: 'candidate' as const },
    ...(i === 0 ? [{ scenario: 'relay-1' as const, shape, size: 'sdp' as const }] : []),
    { scenario: 'relay-2' as const, shape, size: 'candidate' as const },
  ]);
}
