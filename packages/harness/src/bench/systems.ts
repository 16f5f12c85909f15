/**
 * The systems under test, each started fresh on loopback as children of the harness:
 * ours (etcd + memcached + one gateway + two nodes, the built CLI via testkit's startCluster), optionally the same
 * cluster built from a baseline commit (`base`), PeerJS server
 * (`peer` 1.0.2's own CLI) and the bare `ws` relay (compiled once with esbuild, so no tsx loader sits in the
 * measured process); optionally a bare `sockjs` relay, built the same way.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { freePort, ManagedProcess, startCluster, type LocalCluster } from '@messaging-server/testkit';
import type { Target } from './loadgen.js';
import type { SystemName } from './results.js';

/** The repository root (this file is packages/harness/src/bench/systems.ts): .tmp/, docs/ and node_modules/ hang off it. */
export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const TMP = `${ROOT}.tmp/bench`;

/**
 * Our nodes' per-connection rate limit (1000/s, burst 2000) would cap a closed-loop relay run, so the bench lifts it.
 * Schema validation, sessions and acks stay on.
 */
export const OUR_ENV: Record<string, string> = {
  MSG_RATE_MESSAGES_PER_SECOND: '1000000',
  MSG_RATE_BURST: '2000000',
  // As production runs (production mode refuses to start without one): nodes authenticate each other.
  MSG_CLUSTER_SECRET: 'bench-cluster-secret',
};

export interface RunningSystem {
  name: SystemName;
  target: Target;
  /** The processes that relay on one node / across nodes and hold the idle connections. */
  relayPids: number[];
  crossPids: number[];
  /** Other processes of the system whose CPU and RSS are recorded alongside (gateway, memcached, etcd, node-2). */
  otherPids: Record<string, number>;
  /** Every process of the server side, by name: what idle memory is judged on (for ours every node and the gateway). */
  serverPids: Record<string, number>;
  stop(): Promise<void>;
}

/**
 * testkit does not expose the memcached and etcd pids; they are children of this process. With ours and base up at
 * once there are two of each, so the one wanted is told by an argument only it has (its listening port or URL).
 */
function childByName(comm: string, argument: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (name !== comm || ppid !== process.pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(argument)) return Number(entry);
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

function pidOf(proc: ManagedProcess): number {
  if (proc.pid === undefined) throw new Error(`${proc.name} has no pid`);
  return proc.pid;
}

/**
 * Our cluster: etcd, memcached, one gateway, node-1 and node-2. `as: 'base'` with `cli` runs another commit's build
 * (BENCH_BASELINE) in exactly the same set-up.
 */
export async function startOurs(
  extraEnv: Record<string, string> = {},
  nodeEnv: Record<string, string> = {},
  build: { as: 'ours' | 'base'; cli?: string } = { as: 'ours' },
): Promise<RunningSystem & { cluster: LocalCluster }> {
  const cluster = await startCluster({ nodes: 0, gateways: 1, env: { ...OUR_ENV, ...extraEnv }, ...(build.cli === undefined ? {} : { cli: build.cli }) });
  await Promise.all([cluster.addNode({ nodeId: 'node-1', env: nodeEnv }), cluster.addNode({ nodeId: 'node-2', env: nodeEnv })]);
  await cluster.waitForGatewaysToSee(2);
  const n1 = pidOf(cluster.node('node-1').process);
  const n2 = pidOf(cluster.node('node-2').process);
  const others: Record<string, number> = { gateway: pidOf(cluster.gateways[0]?.process as ManagedProcess) };
  const memcachedPort = cluster.memcachedAddress.split(':').pop() ?? '';
  for (const [comm, argument] of [['memcached', memcachedPort], ['etcd', cluster.etcdEndpoint]] as const) {
    const pid = childByName(comm, argument);
    if (pid !== undefined) others[comm] = pid;
  }
  return {
    name: build.as,
    cluster,
    target: { kind: 'ours', gatewayUrl: cluster.gatewayUrl },
    relayPids: [n1],
    crossPids: [n1, n2],
    otherPids: { ...others, 'node-2': n2 },
    serverPids: { 'node-1': n1, 'node-2': n2, gateway: others['gateway'] as number },
    stop: () => cluster.stop(),
  };
}

export async function startPeerJs(extraEnv: Record<string, string> = {}): Promise<RunningSystem> {
  const port = await freePort();
  const bin = `${ROOT}node_modules/peer/dist/bin/peerjs.js`;
  // Defaults would refuse connection 5,001 (concurrent_limit) and drop clients that send no HEARTBEAT for 60 s.
  const proc = new ManagedProcess('peerjs', process.execPath, [bin, '--port', String(port), '--host', '127.0.0.1', '--concurrent_limit', '100000', '--alive_timeout', '3600000'], {
    PATH: process.env['PATH'],
    ...extraEnv,
  });
  await proc.waitForOutput(/Started PeerServer/, 15_000);
  const pid = pidOf(proc);
  return {
    name: 'peerjs',
    target: { kind: 'peerjs', wsUrl: `ws://127.0.0.1:${String(port)}` },
    relayPids: [pid],
    crossPids: [],
    otherPids: {},
    serverPids: { peerjs: pid },
    stop: async () => void (await proc.stop(5000)),
  };
}

const relaysBuilt = new Map<string, Promise<string>>();

function buildBareRelay(name: 'bare-ws-relay' | 'bare-sockjs-relay'): Promise<string> {
  let built = relaysBuilt.get(name);
  if (built) return built;
  built = (async () => {
    mkdirSync(TMP, { recursive: true });
    const outfile = `${TMP}/${name}.mjs`;
    await build({
      entryPoints: [fileURLToPath(new URL(`./${name}.ts`, import.meta.url))],
      outfile,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      bundle: true,
      packages: 'external',
      logLevel: 'warning',
    });
    return outfile;
  })();
  relaysBuilt.set(name, built);
  return built;
}

export async function startBareWs(extraEnv: Record<string, string> = {}): Promise<RunningSystem> {
  const file = await buildBareRelay('bare-ws-relay');
  const port = await freePort();
  const proc = new ManagedProcess('bare-ws', process.execPath, [file, String(port)], { PATH: process.env['PATH'], ...extraEnv });
  await proc.waitForOutput(/listening/, 15_000);
  const pid = pidOf(proc);
  return {
    name: 'ws',
    target: { kind: 'ws', wsUrl: `ws://127.0.0.1:${String(port)}` },
    relayPids: [pid],
    crossPids: [],
    otherPids: {},
    serverPids: { 'bare-ws': pid },
    stop: async () => void (await proc.stop(5000)),
  };
}

export async function startBareSockJs(extraEnv: Record<string, string> = {}): Promise<RunningSystem> {
  const file = await buildBareRelay('bare-sockjs-relay');
  const port = await freePort();
  const proc = new ManagedProcess('bare-sockjs', process.execPath, [file, String(port)], { PATH: process.env['PATH'], ...extraEnv });
  await proc.waitForOutput(/listening/, 15_000);
  const pid = pidOf(proc);
  return {
    name: 'sockjs',
    target: { kind: 'sockjs', wsUrl: `ws://127.0.0.1:${String(port)}/ws` },
    relayPids: [pid],
    crossPids: [],
    otherPids: {},
    serverPids: { 'bare-sockjs': pid },
    stop: async () => void (await proc.stop(5000)),
  };
}
