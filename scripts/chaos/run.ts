import { mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalCluster, waitFor } from '@messaging-server/testkit';
import type { ChaosConfig, FaultStep } from './config.js';
import { Fleet, type SessionEvent } from './fleet.js';
import { Ledger, type LedgerTotals } from './ledger.js';
import { LoadSampler, type LoadSample } from './sampler.js';
import { percentiles, type Percentiles } from './stats.js';

export interface TimelineEvent {
  /** Seconds after traffic started (negative: during setup). */
  at: number;
  event: string;
  detail: string;
}

export interface ScaleOutResult {
  nodeId: string;
  at: number;
  waveSize: number;
  /** Of the wave's first sessions, how many landed on the new node. */
  onNewNode: number;
  share: number;
  /** Seconds from the node's arrival until its load reached the others' average (null: never within the run). */
  evenedOutAfter: number | null;
}

export interface ChaosResult {
  config: ChaosConfig;
  startedAt: string;
  durationSeconds: number;
  timeline: TimelineEvent[];
  totals: LedgerTotals;
  reconnects: Percentiles & { unfinished: number };
  /** Per phase (a fault until the next one): reconnects, errors answered, and how long sends waited for an answer. */
  reconnectsByFault: { fault: string; at: number; stats: Percentiles; errors: Record<string, number>; answerMs: Percentiles }[];
  answerMs: Percentiles;
  connectErrors: Record<string, number>;
  terminalCloses: number;
  scaleOut: ScaleOutResult[];
  samples: LoadSample[];
  sessions: SessionEvent[];
  clients: number;
  /** Facts worth a sentence in the report, derived from the figures. */
  observations: string[];
  /** Problems with the run itself (a fault that could not be applied, a node that did not exit 0, …). */
  anomalies: string[];
}

export interface RunOptions {
  /** Process logs go here (one file per process). */
  logDir?: string;
  progress?: (line: string) => void;
}

/** Clients connecting at once while the first pairs join. */
const INITIAL_CONCURRENCY = 8;

function faultLabel(step: FaultStep): string {
  if (!('downSeconds' in step)) return step.kind;
  const kill = step.kind === 'etcd-restart' && step.killDuring ? ', a node SIGKILLed meanwhile' : '';
  return `${step.kind} (${String(step.downSeconds)} s down${kill})`;
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
  const fleet = new Fleet({
    gatewayUrls: cluster.gateways.map((g) => g.url),
    ledger,
    clock: sinceStartMs,
    intervalMs: config.intervalMs,
    maxInflightPerStream: config.maxInflightPerStream,
    sdk: { sendTimeoutMs: config.sendTimeoutMs, pingIntervalMs: 5000, pingTimeoutMs: 5000 },
  });
  const sampler = new LoadSampler(cluster, sinceStartMs);
  const scaleOut: ScaleOutResult[] = [];
  const faultStarts: { fault: string; at: number }[] = [{ fault: 'steady traffic', at: 0 }];
  let phase = 'setup';
  let ticker: NodeJS.Timeout | undefined;
  const drains: Promise<void>[] = [];
  const memcachedBack: number[] = [];

  try {
    record('cluster up', `${String(config.initialNodes)} nodes, ${String(config.gateways)} gateway(s)`);
    await fleet.addPairs(config.pairs, 'initial', INITIAL_CONCURRENCY);
    trafficStart = Date.now();
    record('traffic started', `${String(fleet.size)} clients`);
    fleet.startTraffic();
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

    const oldestNode = (): string => {
      const first = cluster.nodes.keys().next();
      if (first.done) throw new Error('no node left');
      return first.value;
    };

    for (const step of config.faults) {
      const wait = step.at * 1000 - sinceStartMs();
      if (wait > 0) await sleep(wait);
      phase = step.kind;
      faultStarts.push({ fault: faultLabel(step), at: seconds() });
      try {
        switch (step.kind) {
          case 'scale-out': {
            const before = cluster.nodes.size;
            const node = await cluster.addNode();
            await cluster.waitForGatewaysToSee(before + 1);
            const at = seconds();
            record('scale-out', `${node.nodeId} added and visible to the gateways; ${String(config.scaleOutPairs * 2)} clients join, ${String(config.scaleOutJoinsPerSecond)}/s`);
            const wave = new Set(await fleet.addPairs(config.scaleOutPairs, `scale-out ${node.nodeId}`, 4, config.scaleOutJoinsPerSecond));
            const firsts = new Map<string, string>();
            for (const s of fleet.sessions) if (wave.has(s.userId) && !firsts.has(s.userId)) firsts.set(s.userId, s.nodeId);
            const onNewNode = [...firsts.values()].filter((n) => n === node.nodeId).length;
            scaleOut.push({ nodeId: node.nodeId, at, waveSize: wave.size, onNewNode, share: onNewNode / Math.max(1, wave.size), evenedOutAfter: null });
            record('join wave done', `${String(onNewNode)}/${String(wave.size)} new sessions on ${node.nodeId}`);
            break;
          }
          case 'drain': {
            const nodeId = oldestNode();
            record('drain (SIGTERM)', nodeId);
            const started = Date.now();
            drains.push(
              cluster.drainNode(nodeId).then((status) => {
                record('drained', `${nodeId} exited ${String(status.code ?? status.signal)} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
                if (status.code !== 0) anomalies.push(`${nodeId} exited ${String(status.code ?? status.signal)} after a drain`);
              }),
            );
            break;
          }
          case 'kill': {
            const before = cluster.nodes.size;
            const victim = oldestNode();
            const added = await cluster.addNode();
            await cluster.waitForGatewaysToSee(before + 1);
            record('node added', `${added.nodeId} (before the kill)`);
            await cluster.killNode(victim);
            record('SIGKILL', victim);
            break;
          }
          case 'etcd-restart': {
            const etcd = cluster.etcd;
            if (!etcd) throw new Error('the cluster does not own its etcd');
            if (step.killDuring) {
              const added = await cluster.addNode();
              await cluster.waitForGatewaysToSee(cluster.nodes.size);
              record('node added', `${added.nodeId} (before the outage)`);
            }
            const downSince = Date.now();
            await etcd.stop();
            record('etcd stopped');
            if (step.killDuring) {
              await sleep(2000);
              const victim = oldestNode();
              await cluster.killNode(victim);
              record('SIGKILL', `${victim} (while etcd is down)`);
            }
            await sleep(Math.max(0, step.downSeconds * 1000 - (Date.now() - downSince)));
            await etcd.restart();
            record('etcd restarted');
            // etcd 3.4 restores every lease with a fresh TTL, so old keys linger for one TTL whether or not their
            // owner came back. Only a process that registered again is still listed after that TTL.
            const ttlMs = Number(config.env['MSG_LEASE_TTL_SECONDS'] ?? 5) * 1000;
            await sleep(ttlMs + 1000);
            await waitFor(
              async () => {
                const latest = await sampler.latestRegistryView();
                return latest !== undefined && latest.nodes === cluster.nodes.size && latest.gateways === cluster.gateways.length;
              },
              { timeoutMs: 30_000, intervalMs: 200, what: 'every process registered again' },
            );
            record('registry complete', `all ${String(cluster.nodes.size)} nodes and ${String(cluster.gateways.length)} gateways still registered one lease TTL after the restart`);
            break;
          }
          case 'memcached-restart': {
            const memcached = cluster.memcached;
            if (!memcached) throw new Error('the cluster does not own its memcached');
            await memcached.stop();
            record('memcached stopped');
            await sleep(step.downSeconds * 1000);
            await memcached.restart();
            memcachedBack.push(sinceStartMs());
            record('memcached restarted (empty)');
            break;
          }
        }
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
    phase = 'settling';
    record('traffic stopped', 'waiting for every send to be answered');
    await waitFor(() => ledger.unsettled === 0, { timeoutMs: config.sendTimeoutMs + 5000, intervalMs: 100, what: 'every send answered' }).catch(() => {
      anomalies.push(`${String(ledger.unsettled)} sends still unanswered after the SDK's deadline`);
    });
    // An ack means "handed to the recipient's connection": give the last frames a moment to arrive.
    await waitFor(() => ledger.ackedNotReceived === 0, { timeoutMs: 5000, intervalMs: 100 }).catch(() => undefined);
    record('settled', `${String(ledger.unsettled)} unanswered, ${String(ledger.ackedNotReceived)} acked but not received`);
    await Promise.all(drains);
  } finally {
    clearInterval(ticker);
    fleet.close();
    await sampler.stop();
    await cluster.stop();
  }

  // Setup events were stamped before traffic started; express them relative to it (negative) like the rest.
  timeline.forEach((e, i) => (e.at = Math.round(((stamps[i] as number) - trafficStart) / 100) / 10));
  const samples = sampler.samples;
  for (const s of scaleOut) {
    const next = faultStarts.find((f) => f.at > s.at)?.at ?? Number.POSITIVE_INFINITY;
    s.evenedOutAfter = evenedOutAfter(samples, s.nodeId, s.at, next);
  }
  const finished = fleet.reconnects.filter((r) => r.ms !== undefined).map((r) => r.ms as number);
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
  const observations: string[] = [];
  const first = samples.find((s) => s.source === 'registry' && Object.values(s.connections).reduce((a, b) => a + b, 0) === config.pairs * 2);
  const initial = first ? Object.values(first.connections) : [];
  if (initial.length > 1 && Math.max(...initial) - Math.min(...initial) > (config.pairs * 2) / initial.length / 4) {
    observations.push(
      `The first ${String(config.pairs * 2)} clients, connected ${String(INITIAL_CONCURRENCY)} at a time through ${String(config.gateways)} gateway(s), ` +
        `landed ${initial.join(' / ')} on the ${String(initial.length)} nodes: each gateway adds only its own recent assignments to ` +
        `the load in etcd (refreshed about once a second), so concurrent bursts through several gateways spread unevenly.`,
    );
  }
  for (const s of scaleOut) {
    const after = samples.find((x) => x.source === 'registry' && x.at / 1000 >= s.at + s.waveSize / config.scaleOutJoinsPerSecond + 2);
    const others = after ? Object.entries(after.connections).filter(([id]) => id !== s.nodeId && !after.draining.includes(id)).map(([, c]) => c) : [];
    const mine = after?.connections[s.nodeId];
    if (mine === undefined || others.length === 0) continue;
    const average = others.reduce((a, b) => a + b, 0) / others.length;
    if (mine > average * 1.25 + 2) {
      observations.push(
        `${s.nodeId} ended the scale-out wave with ${String(mine)} sessions against ${average.toFixed(0)} on the other nodes: ` +
          `the gateways kept choosing it after it had caught up, because their view of its load lags by up to a second.`,
      );
    }
  }
  const firstSession = new Map<string, number>();
  for (const e of fleet.sessions) if (!firstSession.has(e.userId)) firstSession.set(e.userId, e.at);
  const scaleOutPhase = reconnectsByFault.findIndex((f) => f.fault === 'scale-out');
  if (scaleOutPhase >= 0) {
    const from = (reconnectsByFault[scaleOutPhase]?.at ?? 0) * 1000;
    const to = (reconnectsByFault[scaleOutPhase + 1]?.at ?? Number.POSITIVE_INFINITY) * 1000;
    const errors = ledger.errorsOf('PEER_UNAVAILABLE', from, to);
    // The recipient had not been welcomed yet when the message was sent: its pair was still joining.
    const early = errors.filter((e) => (firstSession.get(e.stream.split('>')[1] ?? '') ?? Number.POSITIVE_INFINITY) > e.sentAt).length;
    if (early > 0) {
      observations.push(
        `${String(early)} of the ${String(errors.length)} PEER_UNAVAILABLE answers in the scale-out phase were sends to a joining ` +
          `client that had not been welcomed yet (the pairs join one client at a time): correct answers, not faults.`,
      );
    }
  }
  const sessionTtl = Number(config.env['MSG_SESSION_TTL_SECONDS'] ?? 120);
  for (const back of memcachedBack) {
    const next = (faultStarts.find((f) => f.at * 1000 > back)?.at ?? Number.POSITIVE_INFINITY) * 1000;
    const misses = ledger.errorTimes('PEER_UNAVAILABLE', back, next);
    const last = misses.at(-1);
    if (last === undefined) continue;
    observations.push(
      `After memcached came back empty at t=${(back / 1000).toFixed(1)} s, ${String(misses.length)} sends were answered PEER_UNAVAILABLE, ` +
        `the last ${((last - back) / 1000).toFixed(1)} s after the restart (nodes re-assert their live sessions within ` +
        `MSG_SESSION_TTL_SECONDS / 3 = ${(sessionTtl / 3).toFixed(0)} s). The senders were told; nothing was lost silently.`,
    );
  }
  return {
    config,
    observations,
    startedAt: new Date(setupStart).toISOString(),
    durationSeconds: Math.round((Date.now() - setupStart) / 1000),
    timeline,
    totals: ledger.totals(),
    reconnects: { ...percentiles(finished), unfinished: fleet.reconnects.length - finished.length },
    reconnectsByFault,
    answerMs: percentiles(ledger.answerTimesBetween(Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY)),
    connectErrors: fleet.connectErrors,
    terminalCloses: fleet.terminalCloses.length,
    scaleOut,
    samples,
    sessions: fleet.sessions,
    clients: fleet.size,
    anomalies,
  };
}

/** Seconds until the new node's load first comes within 10 % of the other active nodes' average. */
function evenedOutAfter(samples: LoadSample[], nodeId: string, at: number, until: number): number | null {
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
