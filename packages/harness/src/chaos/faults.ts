import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor, type LocalCluster } from '@messaging-server/testkit';
import type { ChaosConfig, FaultStep } from './config.js';
import type { Fleet } from './fleet.js';
import type { Ledger } from './ledger.js';
import type { NodeProxies } from './proxies.js';
import type { ClusterSampler } from '../sampler.js';

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

/** What a fault step works on, and where it writes what it saw. */
export interface FaultContext {
  config: ChaosConfig;
  cluster: LocalCluster;
  fleet: Fleet;
  sampler: ClusterSampler;
  /** Seconds since traffic started, and ms for the ledger's clock. */
  seconds(): number;
  sinceStartMs(): number;
  record(event: string, detail?: string): void;
  anomalies: string[];
  scaleOut: ScaleOutResult[];
  /**
   * Drains (and the silent death's wait for its clients) run on beside the schedule; the run waits for them (and
   * judges their outcome) at the end.
   */
  drains: Promise<void>[];
  /** When memcached came back (ms on the ledger's clock), for the report. */
  memcachedBack: number[];
  ledger: Ledger;
  /** The users that drop off for good at the vanish step, and when they did (ms on the ledger's clock). */
  vanishing: { users: string[]; at?: number };
  /** The freezing proxies some receipted clients reach their nodes through (issue 24). */
  proxies: NodeProxies;
  /** Who went silent at the silent-death step, when, and how many connections froze. */
  silentDeath: { users: string[]; at?: number; frozenConnections: number };
}

/** The resume window the nodes run with (MSG_RESUME_WINDOW_MS, default 10 s). */
export function resumeWindowMs(config: ChaosConfig): number {
  return Number(config.env['MSG_RESUME_WINDOW_MS'] ?? 10_000);
}

function oldestNode(cluster: LocalCluster): string {
  const first = cluster.nodes.keys().next();
  if (first.done) throw new Error('no node left');
  return first.value;
}

/** Applies one fault step; throws when the step could not be applied (the caller records that as an anomaly). */
export async function applyFault(step: FaultStep, ctx: FaultContext): Promise<void> {
  switch (step.kind) {
    case 'scale-out':
      return scaleOut(ctx);
    case 'drain':
      return drain(ctx);
    case 'kill':
      return kill(ctx);
    case 'etcd-restart':
      return etcdRestart(step, ctx);
    case 'memcached-restart':
      return memcachedRestart(step, ctx);
    case 'vanish':
      return vanish(ctx);
    case 'silent-death':
      return silentDeath(ctx);
  }
}

/**
 * The vanishing users drop off the network. Their partners' sends pause first until everything already sent has
 * arrived (a message written to a connection that then dies is not re-delivered: docs/decisions.md), then go on
 * until one second before the window ends: each of those must come back EXPIRED at the window's end.
 */
async function vanish(ctx: FaultContext): Promise<void> {
  const { fleet, ledger, vanishing } = ctx;
  if (vanishing.users.length === 0) throw new Error('no vanishing pairs were connected');
  const streams = fleet.streamsTo(vanishing.users);
  fleet.pause(streams);
  await waitFor(() => streams.every((s) => ledger.streamDone(s)), { timeoutMs: 10_000, intervalMs: 20, what: 'the vanishing streams quiet' });
  fleet.vanish(vanishing.users);
  vanishing.at = ctx.sinceStartMs();
  ctx.record('vanish', `${String(vanishing.users.length)} users dropped off the network for good (no close frame)`);
  fleet.resume(streams, vanishing.at + resumeWindowMs(ctx.config) - 1000);
}

/**
 * The routed clients' networks die silently: their proxies swallow every byte both ways and never close. Nothing is
 * paused: their partners keep writing to them, and they keep writing too. Each client finds out by its pings and
 * reconnects (the run waits for that beside the schedule); with receipts, the node holds what they did not confirm
 * and delivers it after their next welcome, and acks it only then.
 */
async function silentDeath(ctx: FaultContext): Promise<void> {
  const { fleet, config } = ctx;
  const users = [...fleet.proxied];
  if (users.length === 0) throw new Error('no client is routed through a proxy');
  await waitFor(() => users.every((u) => fleet.isOpen(u)), { timeoutMs: 15_000, intervalMs: 50, what: 'the routed clients open' });
  const at = ctx.sinceStartMs();
  const frozen = await ctx.proxies.freeze(users);
  ctx.silentDeath.users = users;
  ctx.silentDeath.at = at;
  ctx.silentDeath.frozenConnections = [...frozen.values()].reduce((a, b) => a + b, 0);
  const missed = users.filter((u) => (frozen.get(u) ?? 0) === 0);
  if (missed.length > 0) throw new Error(`no connection of ${missed.join(', ')} went through a proxy`);
  ctx.record('silent death', `${String(users.length)} ${ctx.config.silentDeathHalf === 'v1.1' ? 'v1.1' : 'receipted'} clients' connections go silent at their proxy (no FIN, no RST)`);
  const deadline = config.pingIntervalMs + config.pingTimeoutMs + 15_000;
  ctx.drains.push(
    waitFor(() => users.every((u) => fleet.sessionsSince(u, at).length > 0), { timeoutMs: deadline, intervalMs: 50, what: 'the silenced clients welcomed again' }).then(
      () => {
        const back = users.map((u) => (fleet.sessionsSince(u, at)[0]?.at ?? at) - at);
        ctx.record('silent death: all back', `${String(users.length)} clients welcomed again ${String(Math.min(...back))}–${String(Math.max(...back))} ms after the freeze`);
      },
      (error: unknown) => {
        ctx.anomalies.push(`silent death: ${error instanceof Error ? error.message : String(error)}`);
      },
    ),
  );
}

async function scaleOut(ctx: FaultContext): Promise<void> {
  const { cluster, config, fleet } = ctx;
  const before = cluster.nodes.size;
  const node = await cluster.addNode();
  await cluster.waitForGatewaysToSee(before + 1);
  const at = ctx.seconds();
  ctx.record('scale-out', `${node.nodeId} added and visible to the gateways; ${String(config.scaleOutPairs * 2)} clients join, ${String(config.scaleOutJoinsPerSecond)}/s`);
  const wave = new Set(await fleet.addPairs(config.scaleOutPairs, `scale-out ${node.nodeId}`, 4, config.scaleOutJoinsPerSecond));
  const firsts = new Map<string, string>();
  for (const s of fleet.sessions) if (wave.has(s.userId) && !firsts.has(s.userId)) firsts.set(s.userId, s.nodeId);
  const onNewNode = [...firsts.values()].filter((n) => n === node.nodeId).length;
  ctx.scaleOut.push({ nodeId: node.nodeId, at, waveSize: wave.size, onNewNode, share: onNewNode / Math.max(1, wave.size), evenedOutAfter: null });
  ctx.record('join wave done', `${String(onNewNode)}/${String(wave.size)} new sessions on ${node.nodeId}`);
}

function drain(ctx: FaultContext): void {
  const nodeId = oldestNode(ctx.cluster);
  ctx.record('drain (SIGTERM)', nodeId);
  const started = Date.now();
  ctx.drains.push(
    ctx.cluster.drainNode(nodeId).then(
      (status) => {
        const exit = String(status.code ?? status.signal);
        ctx.record('drained', `${nodeId} exited ${exit} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
        if (status.code !== 0) ctx.anomalies.push(`${nodeId} exited ${exit} after a drain`);
      },
      (error: unknown) => {
        ctx.anomalies.push(`drain of ${nodeId} failed: ${error instanceof Error ? error.message : String(error)}`);
      },
    ),
  );
}

async function kill(ctx: FaultContext): Promise<void> {
  const { cluster } = ctx;
  const before = cluster.nodes.size;
  const victim = oldestNode(cluster);
  const added = await cluster.addNode();
  await cluster.waitForGatewaysToSee(before + 1);
  ctx.record('node added', `${added.nodeId} (before the kill)`);
  await cluster.killNode(victim);
  ctx.record('SIGKILL', victim);
}

async function etcdRestart(step: Extract<FaultStep, { kind: 'etcd-restart' }>, ctx: FaultContext): Promise<void> {
  const { cluster, config } = ctx;
  const etcd = cluster.etcd;
  if (!etcd) throw new Error('the cluster does not own its etcd');
  if (step.killDuring) {
    const added = await cluster.addNode();
    await cluster.waitForGatewaysToSee(cluster.nodes.size);
    ctx.record('node added', `${added.nodeId} (before the outage)`);
  }
  const downSince = Date.now();
  await etcd.stop();
  ctx.record('etcd stopped');
  if (step.killDuring) {
    await sleep(2000);
    const victim = oldestNode(cluster);
    await cluster.killNode(victim);
    ctx.record('SIGKILL', `${victim} (while etcd is down)`);
  }
  await sleep(Math.max(0, step.downSeconds * 1000 - (Date.now() - downSince)));
  await etcd.restart();
  ctx.record('etcd restarted');
  // etcd 3.4 restores every lease with a fresh TTL, so old keys linger for one TTL whether or not their owner came
  // back. Only a process that registered again is still listed after that TTL.
  const ttlMs = Number(config.env['MSG_LEASE_TTL_SECONDS'] ?? 5) * 1000;
  await sleep(ttlMs + 1000);
  await waitFor(
    async () => {
      const latest = await ctx.sampler.latestRegistryView();
      return latest !== undefined && latest.nodes === cluster.nodes.size && latest.gateways === cluster.gateways.length;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: 'every process registered again' },
  );
  ctx.record('registry complete', `all ${String(cluster.nodes.size)} nodes and ${String(cluster.gateways.length)} gateways still registered one lease TTL after the restart`);
}

async function memcachedRestart(step: Extract<FaultStep, { kind: 'memcached-restart' }>, ctx: FaultContext): Promise<void> {
  const memcached = ctx.cluster.memcached;
  if (!memcached) throw new Error('the cluster does not own its memcached');
  await memcached.stop();
  ctx.record('memcached stopped');
  await sleep(step.downSeconds * 1000);
  await memcached.restart();
  ctx.memcachedBack.push(ctx.sinceStartMs());
  ctx.record('memcached restarted (empty)');
}
