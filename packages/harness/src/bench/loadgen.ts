/**
 * The load generator: one process, started by index.ts with an IPC channel, driving one system at a time.
 * It speaks the raw SockJS websocket transport to our nodes (no sockjs-client: its framing cost would be ours to
 * carry) and plain WebSocket to PeerJS server and the bare relay. Latency is end to end: the sender stamps
 * performance.now() into the payload and the receiver, in this same process, subtracts it. Its connections are
 * loadgen-clients.ts's; receipts (confirming, timing acks) are receipts.ts's.
 */
import { performance } from 'node:perf_hooks';
import { emitToParent, serveCommands } from '../forked-helper.js';
import { closeAll, confirmer, counters, hooks, open, type Client, type Direction, type Target } from './loadgen-clients.js';
import { BODY, type SizeName } from './payload.js';
import { summarize, type LatencySummary } from '../stats.js';

export type { SystemKind, Target } from './loadgen-clients.js';
export type { LatencySummary } from '../stats.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- commands ---------------------------------------------------------------------------------------------------

let pairs: Client[] = [];
let directions: Direction[] = [];
let idle: Client[] = [];

export interface PairsArgs {
  target: Target;
  count: number;
  prefix: string;
  /** ours: the nodes each side's /connect asks the gateway to avoid (puts both sides on one node, or splits them). */
  avoidA?: string[];
  avoidB?: string[];
}

async function openPairs(args: PairsArgs): Promise<{ clients: number }> {
  await closeAll(pairs);
  pairs = [];
  directions = [];
  const work = Array.from({ length: args.count }, async (_, i) => {
    const a = await open(args.target, `${args.prefix}-${String(i)}-a`, args.avoidA ?? []);
    const b = await open(args.target, `${args.prefix}-${String(i)}-b`, args.avoidB ?? []);
    a.partner = b;
    b.partner = a;
    const ab: Direction = { from: a, to: b, inflight: 0, seq: 0 };
    const ba: Direction = { from: b, to: a, inflight: 0, seq: 0 };
    a.outbound = ab;
    b.inbound = ab;
    b.outbound = ba;
    a.inbound = ba;
    pairs.push(a, b);
    directions.push(ab, ba);
  });
  await Promise.all(work);
  return { clients: pairs.length };
}

export interface RelayArgs {
  size: SizeName;
  /** closed: `window` messages in flight per pair (half each way); paced: `rate` messages/s in total. */
  mode: 'closed' | 'paced';
  window?: number;
  rate?: number;
  warmupMs: number;
  durationMs: number;
  /** ours: time each message from its send to its sender's ack (receipts scenarios, receipts on and off). */
  timeAcks?: boolean;
}

export interface RelayResult {
  /** Messages sent over the whole run (warm-up included). */
  sent: number;
  /** Of those, how many never arrived: still missing after the run drained for up to 5 s. */
  lost: number;
  messages: number;
  seconds: number;
  rate: number;
  latencyMs: LatencySummary;
  loadgenCpu: number;
  acks: number;
  errors: number;
  errorCodes: Record<string, number>;
  skipped: number;
  /** With timeAcks: send → ack; and with receipts on, each message's wait for the receipt that covered it. */
  ackLatencyMs?: LatencySummary;
  confirmWaitMs?: LatencySummary;
  receiptsSent?: number;
}

/**
 * Offers `rate` messages/s in total, round-robin over the directions, skipping (and counting through `skip`) a send
 * whose direction already has `maxInflight` unanswered. Returns the function that stops it.
 */
function pace(rate: number, maxInflight: number, sendOne: (dir: Direction) => void, skip: () => void): () => void {
  const started = performance.now();
  let stopped = false;
  let pacer: NodeJS.Timeout | undefined;
  let offered = 0;
  let next = 0;
  // A 1 ms timer rather than a busy loop: the load generator shares two cores with the server under test.
  const tick = (): void => {
    if (stopped) return;
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    while (offered < due) {
      const dir = directions[next] as Direction;
      next = (next + 1) % directions.length;
      offered += 1;
      if (dir.inflight >= maxInflight) skip();
      else sendOne(dir);
    }
    pacer = setTimeout(tick, 1);
  };
  tick();
  return () => {
    stopped = true;
    if (pacer) clearTimeout(pacer);
  };
}

async function relay(args: RelayArgs): Promise<RelayResult> {
  if (directions.length === 0) throw new Error('no pairs open');
  const body = BODY[args.size];
  const perDirection = Math.max(1, Math.floor((args.window ?? 8) / 2));
  // Keeps a stalled server from growing this process without bound during a paced run.
  const maxInflight = 2000;
  let running = true;
  let measuring = false;
  let received = 0;
  let skipped = 0;
  let sent = 0;
  const latencies: number[] = [];
  const ackLatencies: number[] = [];
  const timeAcks = args.timeAcks === true;
  for (const client of pairs) client.clock?.clear();
  hooks.ack = timeAcks
    ? (client, id) => {
        const ms = client.clock?.acked(id);
        if (measuring && ms !== undefined) ackLatencies.push(ms);
      }
    : undefined;
  counters.acks = 0;
  counters.errors = 0;
  counters.errorCodes.clear();

  const sendOne = (dir: Direction): void => {
    sent += 1;
    dir.seq += 1;
    dir.inflight += 1;
    if (timeAcks) dir.from.clock?.sent(String(dir.seq));
    const payload = `{"t":${String(performance.now())},"s":${String(dir.seq)},"k":"${body.kind}","d":${JSON.stringify(body.text)}}`;
    dir.from.ws.send(dir.from.encode(dir.to.id, dir.seq, payload));
  };

  hooks.payload = (client, payload) => {
    const dir = client.inbound;
    if (!dir) return;
    dir.inflight -= 1;
    if (measuring) {
      received += 1;
      latencies.push(performance.now() - payload.t);
    }
    if (running && args.mode === 'closed') sendOne(dir);
  };

  let stopPacer = (): void => {};
  if (args.mode === 'closed') {
    for (const dir of directions) for (let i = 0; i < perDirection; i += 1) sendOne(dir);
  } else {
    stopPacer = pace(args.rate ?? 1000, maxInflight, sendOne, () => (skipped += 1));
  }

  await sleep(args.warmupMs);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  measuring = true;
  confirmer.startMeasuring();
  emitToParent({ event: 'window-start' });
  await sleep(args.durationMs);
  measuring = false;
  emitToParent({ event: 'window-end' });
  const confirms = confirmer.stopMeasuring();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  running = false;
  stopPacer();
  // Let what is in flight land before the next run reuses the pairs.
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && directions.some((d) => d.inflight > 0)) await sleep(20);
  // What is still in flight now never arrived: a server that drops messages shows here, not as a better latency.
  const lost = directions.reduce((sum, d) => sum + Math.max(0, d.inflight), 0);
  for (const d of directions) d.inflight = 0;
  await sleep(100);
  hooks.ack = undefined;
  const receiptsOn = pairs.some((c) => c.receipts !== undefined);
  return {
    ...(timeAcks ? { ackLatencyMs: summarize(ackLatencies) } : {}),
    ...(receiptsOn ? { confirmWaitMs: summarize(confirms.waits), receiptsSent: confirms.receipts } : {}),
    sent,
    lost,
    messages: received,
    seconds,
    rate: received / seconds,
    latencyMs: summarize(latencies),
    loadgenCpu: (cpu.user + cpu.system) / 1e6 / seconds,
    acks: counters.acks,
    errors: counters.errors,
    errorCodes: Object.fromEntries(counters.errorCodes),
    skipped,
  };
}

export interface ConnectArgs {
  target: Target;
  count: number;
  concurrency: number;
  prefix: string;
  avoid?: string[];
  /** idle: keep the connections open (scenario 4); otherwise close them after the run. */
  keep: boolean;
}

export interface ConnectResult {
  completed: number;
  failed: number;
  firstError?: string;
  seconds: number;
  rate: number;
  latencyMs: LatencySummary;
  open: number;
}

async function connectMany(args: ConnectArgs): Promise<ConnectResult> {
  const latencies: number[] = [];
  const made: Client[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const t0 = performance.now();
  let lastProgress = t0;
  const worker = async (): Promise<void> => {
    while (next < args.count) {
      const i = next++;
      const started = performance.now();
      try {
        made.push(await open(args.target, `${args.prefix}-${String(i)}`, args.avoid ?? []));
        latencies.push(performance.now() - started);
      } catch (error) {
        failed += 1;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
      if (performance.now() - lastProgress > 2000) {
        lastProgress = performance.now();
        emitToParent({ event: 'progress', text: `${String(made.length)}/${String(args.count)} connected` });
      }
    }
  };
  await Promise.all(Array.from({ length: args.concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  if (args.keep) idle.push(...made);
  else await closeAll(made);
  const result: ConnectResult = {
    completed: latencies.length,
    failed,
    seconds,
    rate: latencies.length / seconds,
    latencyMs: summarize(latencies),
    open: idle.length,
  };
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

// ---- reconnect storm --------------------------------------------------------------------------------------------

export interface StormArgs {
  target: Target;
  /** What each client asks /connect to avoid: the node that died. */
  avoid: string[];
  /** Each client waits a random share of this before each attempt, as the SDK's full-jitter first delay does. */
  jitterMs: number;
  timeoutMs: number;
}

export interface StormResult {
  clients: number;
  reconnected: number;
  failed: number;
  firstError?: string;
  /** Wall-clock time (Date.now()) of the last welcome: the parent compares it with the moment it killed the node. */
  lastWelcomeAt: number;
  latencyMs: LatencySummary;
}

let storm: Promise<StormResult> | undefined;

/** Every idle client reconnects as soon as its connection closes; `stormResult` waits for all of them. */
function armStorm(args: StormArgs): { armed: number } {
  const clients = idle;
  idle = [];
  storm = new Promise((resolve) => {
    const latencies: number[] = [];
    const again: Client[] = [];
    let failed = 0;
    let settled = 0;
    let lastWelcomeAt = 0;
    let firstError: string | undefined;
    const finish = (): void => {
      clearTimeout(deadline);
      idle.push(...again);
      const result: StormResult = { clients: clients.length, reconnected: again.length, failed, lastWelcomeAt, latencyMs: summarize(latencies) };
      if (firstError !== undefined) result.firstError = firstError;
      resolve(result);
    };
    const deadline = setTimeout(finish, args.timeoutMs);
    const settle = (): void => {
      settled += 1;
      if (settled === clients.length) finish();
      else if (settled % 1000 === 0) emitToParent({ event: 'progress', text: `storm: ${String(settled)}/${String(clients.length)} back` });
    };
    for (const client of clients) {
      client.ws.once('close', () => {
        const closedAt = Date.now();
        const attempt = async (): Promise<void> => {
          await new Promise((r) => setTimeout(r, Math.random() * args.jitterMs));
          try {
            again.push(await open(args.target, client.id, args.avoid));
            lastWelcomeAt = Math.max(lastWelcomeAt, Date.now());
            latencies.push(Date.now() - closedAt);
            settle();
          } catch (error) {
            firstError ??= error instanceof Error ? error.message : String(error);
            if (Date.now() - closedAt < args.timeoutMs) return attempt();
            failed += 1;
            settle();
          }
        };
        void attempt();
      });
    }
  });
  return { armed: clients.length };
}

function stormResult(): Promise<StormResult> {
  if (!storm) throw new Error('no storm armed');
  return storm;
}

async function closeEverything(): Promise<{ closed: number }> {
  const all = [...pairs, ...idle];
  pairs = [];
  directions = [];
  idle = [];
  await closeAll(all);
  return { closed: all.length };
}

/** The commands the bench's driver (driver.ts) sends. */
const commands = {
  pairs: openPairs,
  relay,
  connect: connectMany,
  'arm-storm': armStorm,
  'storm-result': stormResult,
  close: closeEverything,
};
export type BenchCommands = typeof commands;

serveCommands(commands);
