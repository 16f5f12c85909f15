/**
 * The scale run: a cluster of real processes on this machine (etcd, memcached, gateways and nodes from
 * packages/cli/dist via testkit's LocalCluster), idle clients and active pairs from one load generator, then a phase
 * in which a node joins every cycle and the oldest one drains, while the sampler records what the cluster reports.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { LocalCluster } from '@messaging-server/testkit';
import type { ScaleConfig } from './config.js';
import type { LoadResult } from './loadgen.js';
import { startScaleLoadGen, type ScaleLoadGen } from './loadgen-driver.js';
import { afterWindow, snapshotsEvery, stableWindows, type RoomsMeasurements } from './rooms-phase.js';
import { ClusterSampler, type NodeSample } from '../sampler.js';
import { ResourceSampler, type ResourceSample } from './resources.js';

export interface TimelineEvent {
  /** Epoch ms. */
  at: number;
  event: 'join' | 'joined' | 'drain' | 'drained';
  nodeId: string;
}

export interface ScaleResult {
  config: ScaleConfig;
  startedAt: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string };
  /** Epoch ms of the run's start and of the join/drain phase's start and end. */
  runStartedAt: number;
  trafficStartedAt: number;
  trafficEndedAt: number;
  /** Start to finish, cluster start and stop included. */
  durationSeconds: number;
  phaseSeconds: { cluster: number; idle: number; pairs: number; rooms: number; warmup: number; roomWindows: number; traffic: number; afterWindow: number; stop: number };
  opened: { idle: number; pairClients: number; roomMembers: number };
  /** Issue 23: the stable windows and the join/drain phase's snapshots of node CPU and room counters. */
  rooms: RoomsMeasurements;
  timeline: TimelineEvent[];
  nodeSamples: NodeSample[];
  /** Each node's registration (its record's `startedAt`, epoch ms). */
  nodeStartedAt: Record<string, number>;
  /** Taken before any client connected: the nodes' RSS without connections. */
  baseline: ResourceSample | null;
  /** Taken once every client was open, before any message: the nodes' RSS with idle connections only. */
  afterOpen: ResourceSample | null;
  /** Epoch ms: traffic started here, `warmupSeconds` before the join/drain phase. */
  warmupStartedAt: number;
  resourceSamples: ResourceSample[];
  load: LoadResult;
  /** Each gateway's own msg_allocations_total by node, read at the end (a cross-check of the load generator's log). */
  gatewayAllocations: Record<string, number>[];
  samplerErrors: string[];
}

export interface RunOptions {
  logDir?: string;
  progress?: (line: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function gatewayAllocations(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
  const out: Record<string, number> = {};
  for (const match of text.matchAll(/^msg_allocations_total\{node_id="([^"]+)"[^}]*\} (\d+)/gm)) out[match[1] as string] = Number(match[2]);
  return out;
}

/** Starts the nodes a few at a time: twenty processes loading at once on two cores would miss their start timeout. */
async function startNodes(cluster: LocalCluster, count: number, say: (line: string) => void): Promise<void> {
  const batch = 4;
  for (let started = 0; started < count; started += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - started) }, () => cluster.addNode()));
    say(`nodes: ${String(Math.min(count, started + batch))}/${String(count)} running`);
  }
  await cluster.waitForGatewaysToSee(count, 20_000);
}

/** Joins one node per cycle and drains the oldest one `drainAfterSeconds` later; resolves when every drain finished. */
async function joinAndDrain(cluster: LocalCluster, config: ScaleConfig, startedAt: number, timeline: TimelineEvent[]): Promise<void> {
  const draining = new Set<string>();
  const drains: Promise<unknown>[] = [];
  const until = (offsetSeconds: number): Promise<void> => sleep(Math.max(0, startedAt + offsetSeconds * 1000 - Date.now()));
  const cycles = Math.floor(config.trafficSeconds / config.cycleSeconds);
  for (let cycle = 0; cycle < cycles; cycle += 1) {
    await until(cycle * config.cycleSeconds);
    const spawnedAt = Date.now();
    const node = await cluster.addNode();
    timeline.push({ at: spawnedAt, event: 'join', nodeId: node.nodeId }, { at: Date.now(), event: 'joined', nodeId: node.nodeId });
    await until(cycle * config.cycleSeconds + config.drainAfterSeconds);
    const oldest = [...cluster.nodes.keys()].find((id) => !draining.has(id));
    if (!oldest) continue;
    draining.add(oldest);
    timeline.push({ at: Date.now(), event: 'drain', nodeId: oldest });
    drains.push(
      cluster.drainNode(oldest).then(() => {
        draining.delete(oldest);
        timeline.push({ at: Date.now(), event: 'drained', nodeId: oldest });
      }),
    );
  }
  await until(config.trafficSeconds);
  await Promise.all(drains);
}

function progressEvery(ms: number, line: () => Promise<string>, say: (line: string) => void): () => void {
  const timer = setInterval(() => void line().then(say, () => undefined), ms);
  return () => clearInterval(timer);
}

interface Phases {
  cluster: LocalCluster;
  sampler?: ClusterSampler;
  loadgen?: ScaleLoadGen;
}

/** Opens the idle clients, then the pairs; returns how many of each and when each phase ended. */
async function openClients(loadgen: ScaleLoadGen, config: ScaleConfig, say: (line: string) => void) {
  say(`opening ${config.idleClients.toLocaleString('en')} idle clients through ${String(config.gateways)} gateways`);
  const idle = await loadgen.call('idle', { count: config.idleClients, prefix: 'idle', concurrency: config.openConcurrency });
  const idleDone = Date.now();
  say(`${idle.opened.toLocaleString('en')} idle clients open in ${idle.seconds.toFixed(1)} s; opening ${String(config.pairs)} pairs`);
  const pairs = await loadgen.call('pairs', { count: config.pairs, prefix: 'pair', concurrency: config.openConcurrency });
  const pairsDone = Date.now();
  say(`${String(pairs.opened)} pair clients open; opening ${String(config.rooms)} rooms of ${String(config.membersPerRoom)} (each member connects with its room's name, then joins)`);
  const rooms = await loadgen.call('rooms', { rooms: config.rooms, membersPerRoom: config.membersPerRoom, prefix: 'room', concurrency: config.openConcurrency });
  say(`${String(rooms.opened)} room members open, ${String(rooms.joined)} joined, in ${rooms.seconds.toFixed(1)} s`);
  return { opened: { idle: idle.opened, pairClients: pairs.opened, roomMembers: rooms.opened }, rooms, idleDone, pairsDone, roomsDone: Date.now() };
}

/** The join/drain phase with traffic running; a progress line every 5 s. */
async function traffic(phases: Required<Phases>, config: ScaleConfig, say: (line: string) => void) {
  const { cluster, loadgen, sampler } = phases;
  const warmup = await loadgen.call('start', { pairIntervalMs: config.pairIntervalMs, roomIntervalMs: config.roomIntervalMs, churnPerSecond: config.churnPerSecond, bucketMs: config.bucketMs });
  say(`traffic: pairs send every ${String(config.pairIntervalMs)} ms, room members every ${String(config.roomIntervalMs)} ms, ${String(config.churnPerSecond)} idle users/s churn; ${String(config.warmupSeconds)} s of warm-up`);
  await sleep(config.warmupSeconds * 1000);
  const windowsStartedAt = Date.now();
  const windows = await stableWindows(cluster, loadgen, config.roomWindowSeconds, say);
  const { startedAt } = await loadgen.call('phase');
  const stopSnapshots = snapshotsEvery(cluster, loadgen, 5000);
  say(`joins and drains: a node joins every ${String(config.cycleSeconds)} s and the oldest drains ${String(config.drainAfterSeconds)} s later`);
  const stopProgress = progressEvery(
    5000,
    async () => {
      const s = await loadgen.call('status');
      const latest = sampler.latest;
      const nodes = Object.keys(latest?.connections ?? {});
      const draining = latest?.draining.length ?? 0;
      const elapsed = ((Date.now() - startedAt) / 1000).toFixed(0);
      return `traffic ${elapsed}/${String(config.trafficSeconds)} s: ${String(nodes.length)} nodes (${String(draining)} draining), ${s.open.toLocaleString('en')}/${s.clients.toLocaleString('en')} clients open, ${String(s.reconnecting)} connecting`;
    },
    say,
  );
  const timeline: TimelineEvent[] = [];
  try {
    await joinAndDrain(cluster, config, startedAt, timeline);
  } finally {
    stopProgress();
  }
  const phase = await stopSnapshots();
  const endedAt = Date.now();
  say(`rooms: a ${String(config.roomWindowSeconds)} s window after the last drain (membership stable again)`);
  windows.push(await afterWindow(cluster, loadgen, config.roomWindowSeconds));
  const load = await loadgen.call('stop');
  const allocations = await Promise.all(cluster.gateways.map((g) => gatewayAllocations(g.url)));
  return { warmupStartedAt: warmup.startedAt, windowsStartedAt, startedAt, endedAt, afterEndedAt: Date.now(), windows, phase, timeline, load, gatewayAllocations: allocations };
}

async function stopAll(phases: Phases): Promise<void> {
  await phases.sampler?.stop().catch(() => undefined);
  await phases.loadgen?.call('close').catch(() => undefined);
  await phases.loadgen?.stop().catch(() => undefined);
  await phases.cluster.stop();
}

export async function runScale(config: ScaleConfig, options: RunOptions = {}): Promise<ScaleResult> {
  const runStartedAt = Date.now();
  const say = options.progress ?? ((): void => undefined);
  if (options.logDir) {
    rmSync(options.logDir, { recursive: true, force: true });
    mkdirSync(options.logDir, { recursive: true });
  }
  const phases: Phases = {
    cluster: await LocalCluster.start({ nodes: 0, gateways: config.gateways, env: config.env, ...(options.logDir ? { logDir: options.logDir } : {}) }),
  };
  let collected;
  try {
    const { cluster } = phases;
    say(`etcd ${cluster.etcdEndpoint}, memcached ${cluster.memcachedAddress}, ${String(config.gateways)} gateways; starting ${String(config.initialNodes)} nodes`);
    await startNodes(cluster, config.initialNodes, say);
    const clusterReady = Date.now();
    // Resources on every 5th tick: reading /proc and the services' counters costs more than a registry list.
    const sampler = (phases.sampler = new ClusterSampler(cluster, { intervalMs: config.sampleMs, every: { ticks: 5, sample: () => resources.sample() } }));
    const resources = new ResourceSampler(cluster, (text) => sampler.note(text));
    await resources.sample();
    const baseline = resources.samples.pop() ?? null;
    sampler.start();
    const loadgen = (phases.loadgen = await startScaleLoadGen(cluster.gateways.map((g) => g.url), say));
    resources.watch('loadgen', loadgen.pid);
    const clients = await openClients(loadgen, config, say);
    const afterOpen = await resources.sample().then(() => resources.samples.pop() ?? null);
    const run = await traffic({ cluster, sampler, loadgen }, config, say);
    say('stopping: closing clients, then the cluster');
    collected = { clusterReady, baseline, afterOpen, clients, run, sampler, resources };
  } finally {
    await stopAll(phases);
  }
  const stopped = Date.now();
  const { clusterReady, baseline, afterOpen, clients, run, sampler, resources } = collected;
  const first = cpus()[0];
  return {
    config,
    startedAt: new Date(runStartedAt).toISOString(),
    machine: { cpus: cpus().length, cpuModel: first?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    runStartedAt,
    warmupStartedAt: run.warmupStartedAt,
    trafficStartedAt: run.startedAt,
    trafficEndedAt: run.endedAt,
    durationSeconds: (stopped - runStartedAt) / 1000,
    phaseSeconds: {
      cluster: (clusterReady - runStartedAt) / 1000,
      idle: (clients.idleDone - clusterReady) / 1000,
      pairs: (clients.pairsDone - clients.idleDone) / 1000,
      rooms: (clients.roomsDone - clients.pairsDone) / 1000,
      warmup: (run.windowsStartedAt - run.warmupStartedAt) / 1000,
      roomWindows: (run.startedAt - run.windowsStartedAt) / 1000,
      traffic: (run.endedAt - run.startedAt) / 1000,
      afterWindow: (run.afterEndedAt - run.endedAt) / 1000,
      stop: (stopped - run.afterEndedAt) / 1000,
    },
    opened: clients.opened,
    rooms: { opened: clients.rooms.opened, joined: clients.rooms.joined, openSeconds: clients.rooms.seconds, windows: run.windows, phase: run.phase },
    timeline: run.timeline,
    nodeSamples: sampler.samples,
    nodeStartedAt: sampler.nodeStartedAt,
    baseline,
    afterOpen,
    resourceSamples: resources.samples,
    load: run.load,
    gatewayAllocations: run.gatewayAllocations,
    samplerErrors: sampler.errors,
  };
}
