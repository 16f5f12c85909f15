/**
 * Local cluster manager: `make run` and the operators' playground on one machine.
 *
 *   node --import tsx scripts/cluster.ts run            start etcd, memcached, a gateway and 2 nodes; Ctrl-C stops all
 *   node --import tsx scripts/cluster.ts run-tls        the same behind the real proxy (nginx, TLS, one origin)
 *   node --import tsx scripts/cluster.ts <command>      from another terminal, see USAGE
 *
 * `run` listens on a loopback control port written to .run/cluster.json; the other commands talk to it, so every
 * process stays a child of `run` and is reaped by it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { EtcdRegistry } from '@messaging-server/core';
import { LocalCluster, type ClusterNode } from './cluster.js';
import { freePort } from './free-port.js';
import { LocalProxy, type ProxyRoute } from './local-proxy.js';
import type { ManagedProcess } from './process.js';

// Tests point this elsewhere, so they never collide with a developer's own `make run`.
const STATE_DIR = process.env['CLUSTER_STATE_DIR'] ?? '.run';
const STATE_FILE = `${STATE_DIR}/cluster.json`;

const USAGE = `usage: node --import tsx scripts/cluster.ts <command>

  run                          start etcd, memcached, CLUSTER_GATEWAYS (1) gateways and CLUSTER_NODES (2) nodes;
                               Ctrl-C stops everything. CLUSTER_PORTS=auto picks free ports (default: 8080, 8081…).
                               MSG_* variables in the environment reach every process (e.g. MSG_LEASE_TTL_SECONDS=3).
                               State file and logs in CLUSTER_STATE_DIR (default .run/).
  run-tls                      \`run\` behind the production proxy's routes (nginx) with TLS from a CA made at start:
                               one origin, https://127.0.0.1:8443 (CLUSTER_PORTS=auto: a free port), a path per node
  status                       processes, addresses, pids; each node's state and connections from the registry
  add                          start one more node
  scale <N>                    add nodes, or drain the newest ones, until N run
  drain <nodeId>               SIGTERM: the node drains (clients closed with 4000) and exits
  kill <nodeId>                SIGKILL: a crash; the node vanishes from the registry within the lease TTL
  etcd stop|start|restart      take etcd away and bring it back (same data dir)
  memcached stop|start|restart take memcached away and bring it back (start and restart: empty)
  stop                         stop everything, as Ctrl-C in the \`run\` terminal does
`;

/** Variables the cluster sets per process; a value from the shell must not override them. */
const OWN_VARIABLES = new Set([
  'MSG_ETCD_ENDPOINTS',
  'MSG_ETCD_PREFIX',
  'MSG_MEMCACHED_SERVERS',
  'MSG_MEMCACHED_PREFIX',
  'MSG_HOST',
  'MSG_PORT',
  'MSG_INTERNAL_PORT',
  'MSG_NODE_ID',
  'MSG_PUBLIC_URL',
  'MSG_PUBLIC_BASE_URL',
  'MSG_INTERNAL_URL',
]);

interface RunOptions {
  nodes: number;
  gateways: number;
  /** `fixed`: gateway 8080, nodes 8081…, internal 9081… (the contract's defaults); `auto`: free ports. */
  ports: 'fixed' | 'auto';
  env: Record<string, string>;
  /** Behind the proxy (`run-tls`). */
  tls?: boolean;
}

/** The proxy in front of a `run-tls` cluster: its origin, the CA to trust, and how to tell it about node changes. */
interface ProxyFront {
  origin: string;
  caCert: string;
  update(): Promise<void>;
  stop(): Promise<void>;
}

const routesOf = (cluster: LocalCluster): ProxyRoute[] => [...cluster.nodes.values()].map((n) => ({ nodeId: n.nodeId, port: n.port }));

/** nginx with the shared routes of k8s/base/proxy in front of the cluster, listening on `port`. */
async function startProxyFront(cluster: LocalCluster, port: number): Promise<ProxyFront> {
  const proxy = await LocalProxy.start({
    dir: `${STATE_DIR}/proxy`,
    host: '127.0.0.1',
    port,
    gatewayPorts: cluster.gateways.map((g) => g.port),
    nodes: routesOf(cluster),
    logFile: `${STATE_DIR}/logs/proxy.log`,
  });
  return { origin: proxy.origin, caCert: proxy.ca.caCert, update: () => proxy.setNodes(routesOf(cluster)), stop: () => proxy.stop() };
}

class UsageError extends Error {}

function positiveInteger(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (value === undefined || value === '' || !Number.isInteger(n) || n < min) {
    throw new UsageError(`${name} must be an integer >= ${String(min)}, got ${JSON.stringify(value ?? null)}`);
  }
  return n;
}

function passThroughEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (key.startsWith('MSG_') && !OWN_VARIABLES.has(key) && value !== undefined) out[key] = value;
  }
  return out;
}

/** The running cluster plus what the manager adds: serialized changes, exit reporting, the state file. */
class Manager {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly registry: EtcdRegistry;
  private readonly expectedExits = new Set<string>();

  constructor(
    readonly cluster: LocalCluster,
    private readonly say: (line: string) => void,
    private readonly controlUrl: () => string,
    private readonly proxy?: ProxyFront,
  ) {
    this.registry = new EtcdRegistry({ endpoints: [cluster.etcdEndpoint], prefix: cluster.prefix, leaseTtlSeconds: 5, dialTimeoutMs: 1000 });
    for (const node of cluster.nodes.values()) this.watchExit(node.nodeId, node.process);
    for (const gateway of cluster.gateways) this.watchExit(gateway.name, gateway.process);
  }

  /** One change at a time: `scale` and `kill` from two terminals must not interleave. */
  private serial<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work, work);
    this.queue = result.catch(() => undefined);
    return result.finally(() => this.writeState());
  }

  private watchExit(name: string, process: ManagedProcess): void {
    void process.exited.then((status) => {
      const how = status.signal ?? `code ${String(status.code)}`;
      // An exit 0 is a finished drain, whoever asked for it (`msgctl drain` goes through the registry, not this script).
      if (this.expectedExits.delete(name) || status.code === 0) this.say(`${name} exited (${how})`);
      else this.say(`${name} exited unexpectedly (${how}); see ${STATE_DIR}/logs/${name}.log`);
    });
  }

  private async add(): Promise<string> {
    const node = await this.cluster.addNode();
    this.watchExit(node.nodeId, node.process);
    await this.proxy?.update();
    this.say(`${node.nodeId} added at ${node.listeningAddress}`);
    return node.nodeId;
  }

  private async drain(nodeId: string): Promise<{ nodeId: string; exit: number | string | null }> {
    this.cluster.node(nodeId);
    this.expectedExits.add(nodeId);
    this.say(`${nodeId} draining`);
    const status = await this.cluster.drainNode(nodeId);
    // A draining node stays routable until it exits, so its clients get their 4000 through the proxy.
    await this.proxy?.update();
    return { nodeId, exit: status.signal ?? status.code };
  }

  async describe(): Promise<Record<string, unknown>> {
    let registry: Record<string, { state: string; connections: number | null }> | string;
    try {
      const { nodes, loads } = await this.registry.list();
      registry = {};
      for (const [id, record] of nodes) registry[id] = { state: record.state, connections: loads.get(id)?.connections ?? null };
    } catch {
      registry = 'unavailable (etcd down?)';
    }
    const c = this.cluster;
    return {
      controlUrl: this.controlUrl(),
      demo: `${this.publicOrigin}/`,
      connect: `${this.publicOrigin}/connect`,
      ...(this.proxy ? { proxy: { origin: this.proxy.origin, caCert: this.proxy.caCert } } : {}),
      gateways: c.gateways.map((g) => ({ name: g.name, url: g.url, pid: g.process.pid })),
      nodes: [...c.nodes.values()].map((n) => ({
        nodeId: n.nodeId,
        listeningAddress: n.listeningAddress,
        internal: n.internalUrl,
        pid: n.process.pid,
        ...(typeof registry === 'object' ? (registry[n.nodeId] ?? { state: 'not registered' }) : {}),
      })),
      registry: typeof registry === 'string' ? registry : 'ok',
      /** What etcd holds: a SIGKILLed node stays here until its lease runs out. */
      registered: typeof registry === 'string' ? null : Object.keys(registry).sort(),
      etcd: { endpoint: c.etcdEndpoint, prefix: c.prefix, running: c.etcd?.running ?? null },
      memcached: { address: c.memcachedAddress, running: c.memcached?.running ?? null },
    };
  }

  /** Where browsers go: the proxy's origin with `run-tls`, else the first gateway. */
  get publicOrigin(): string {
    return this.proxy?.origin ?? this.cluster.gatewayUrl;
  }

  /** The state file always lists the current processes (tests and scripts read the pids from it). */
  writeState(): void {
    const c = this.cluster;
    const state = {
      controlUrl: this.controlUrl(),
      demo: `${this.publicOrigin}/`,
      connect: `${this.publicOrigin}/connect`,
      ...(this.proxy ? { proxy: { origin: this.proxy.origin, caCert: this.proxy.caCert } } : {}),
      gateways: c.gateways.map((g) => g.url),
      nodes: [...c.nodes.values()].map((n) => ({ nodeId: n.nodeId, listeningAddress: n.listeningAddress, internal: n.internalUrl, pid: n.process.pid })),
      etcd: c.etcdEndpoint,
      etcdPrefix: c.prefix,
      memcached: c.memcachedAddress,
      memcachedPrefix: c.baseEnv()['MSG_MEMCACHED_PREFIX'],
    };
    writeFileSync(STATE_FILE, JSON.stringify(state, null, 2));
  }

  command(command: string, args: string[]): Promise<unknown> {
    const [arg] = args;
    switch (command) {
      case 'status':
        return this.describe();
      case 'add':
        return this.serial(async () => ({ added: await this.add() }));
      case 'scale': {
        const target = positiveInteger('scale N', arg, 0);
        return this.serial(async () => {
          while (this.cluster.nodes.size < target) await this.add();
          // The newest nodes go first: the oldest ones usually carry the most sessions.
          const extra = [...this.cluster.nodes.keys()].slice(target).reverse();
          const drained = await Promise.all(extra.map((id) => this.drain(id)));
          return { nodes: [...this.cluster.nodes.keys()], drained };
        });
      }
      case 'drain':
        return this.serial(() => this.drain(String(arg)));
      case 'kill':
        return this.serial(async () => {
          const nodeId = String(arg);
          this.cluster.node(nodeId);
          this.expectedExits.add(nodeId);
          await this.cluster.killNode(nodeId);
          await this.proxy?.update();
          return { nodeId, killed: true };
        });
      case 'etcd':
      case 'memcached':
        return this.serial(() => this.service(command, arg));
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
    }
  }

  private async service(name: 'etcd' | 'memcached', action: string | undefined): Promise<unknown> {
    const server = name === 'etcd' ? this.cluster.etcd : this.cluster.memcached;
    if (!server) throw new Error(`${name} is not managed by this cluster`);
    if (action === 'stop') await server.stop();
    else if (action === 'start' || action === 'restart') await server.restart();
    else throw new UsageError(`${name} stop|start|restart, got ${JSON.stringify(action ?? null)}`);
    this.say(`${name} ${action === 'stop' ? 'stopped' : 'running'}${name === 'memcached' && action !== 'stop' ? ' (empty)' : ''}`);
    return { [name]: server.running ? 'running' : 'stopped' };
  }

  async close(): Promise<void> {
    for (const id of this.cluster.nodes.keys()) this.expectedExits.add(id);
    for (const gateway of this.cluster.gateways) this.expectedExits.add(gateway.name);
    await this.registry.close();
  }
}

async function controlAnswersAt(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/status`, { method: 'POST', signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

async function run(options: RunOptions): Promise<void> {
  const previous = readState();
  if (previous && (await controlAnswersAt(previous.controlUrl))) {
    throw new Error(`a cluster is already running (control ${previous.controlUrl}); stop it with \`node --import tsx scripts/cluster.ts stop\``);
  }
  mkdirSync(`${STATE_DIR}/logs`, { recursive: true });
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  say(`starting etcd, memcached, ${options.gateways === 1 ? 'a gateway' : `${String(options.gateways)} gateways`} and ${String(options.nodes)} nodes (logs in ${STATE_DIR}/logs/)`);
  const fixed = options.ports === 'fixed';
  const proxyPort = options.tls ? (fixed ? 8443 : await freePort()) : undefined;
  // Behind the proxy, nodes advertise their path on its origin, and gateways read clients from X-Forwarded-For.
  const behindProxy =
    proxyPort === undefined
      ? {}
      : { nodeEnv: { MSG_PUBLIC_BASE_URL: `https://127.0.0.1:${String(proxyPort)}` }, gatewayEnv: { MSG_TRUSTED_PROXIES: '127.0.0.1' } };
  const cluster = await LocalCluster.start({
    nodes: options.nodes,
    gateways: options.gateways,
    prefix: '/messaging-server/',
    logDir: `${STATE_DIR}/logs`,
    env: options.env,
    ...behindProxy,
    ...(fixed
      ? {
          gatewayPorts: Array.from({ length: options.gateways }, (_, i) => 8080 + 100 * i),
          nodePorts: Array.from({ length: options.nodes }, (_, i) => ({ port: 8081 + i, internalPort: 9081 + i })),
        }
      : {}),
  });
  let proxy: ProxyFront | undefined;
  if (proxyPort !== undefined) {
    say(`starting the proxy (nginx, routes from k8s/base/proxy/routes.conf) with a new CA on port ${String(proxyPort)}`);
    proxy = await startProxyFront(cluster, proxyPort).catch(async (error: unknown) => {
      await cluster.stop();
      throw error;
    });
  }
  let controlUrl = '';
  const manager = new Manager(cluster, say, () => controlUrl, proxy);
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    say('stopping the cluster');
    controlServer.close();
    await manager.close();
    await proxy?.stop();
    await cluster.stop();
    rmSync(STATE_FILE, { force: true });
    say('stopped');
    process.exit(0);
  };
  const controlServer = createServer((req: IncomingMessage, res: ServerResponse) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    let command = '';
    let args: string[] = [];
    try {
      [command = '', ...args] = new URL(req.url ?? '/', 'http://control').pathname.split('/').slice(1).map(decodeURIComponent);
    } catch {
      return reply(400, { error: 'malformed path' });
    }
    if (command === 'stop') {
      reply(200, { stopping: true });
      void stopAll();
      return;
    }
    if (stopping) return reply(409, { error: 'the cluster is stopping' });
    Promise.resolve()
      .then(() => manager.command(command, args))
      .then(
        (body) => reply(200, body),
        (error: unknown) => reply(error instanceof UsageError ? 400 : 500, { error: error instanceof Error ? error.message : String(error) }),
      );
  });
  // Port 0: the kernel picks a free port, with no window for another process to take it.
  controlServer.listen(0, '127.0.0.1');
  await once(controlServer, 'listening');
  const address = controlServer.address();
  controlUrl = `http://127.0.0.1:${String(typeof address === 'object' && address ? address.port : 0)}`;
  manager.writeState();
  process.on('SIGINT', () => void stopAll());
  process.on('SIGTERM', () => void stopAll());
  const nodes = [...cluster.nodes.values()].map((n) => `${n.nodeId} ${n.listeningAddress}`).join(', ');
  const origin = manager.publicOrigin;
  const front = proxy ? ` | CA ${proxy.caCert} (trust it, or curl --cacert) | gateway ${cluster.gatewayUrl}` : '';
  say(
    `ready: demo ${origin}/ | connect POST ${origin}/connect | nodes ${nodes}${front} | etcd ${cluster.etcdEndpoint} | memcached ${cluster.memcachedAddress} | Ctrl-C to stop`,
  );
}

function readState(): { controlUrl: string } | undefined {
  try {
    return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as { controlUrl: string };
  } catch {
    return undefined;
  }
}

async function send(command: string, args: string[]): Promise<void> {
  const state = readState();
  if (!state) throw new Error(`no running cluster (${STATE_FILE} is missing): start one with \`make run\``);
  const path = [command, ...args].map(encodeURIComponent).join('/');
  let res: Response;
  try {
    res = await fetch(`${state.controlUrl}/${path}`, { method: 'POST', signal: AbortSignal.timeout(120_000) });
  } catch (error) {
    throw new Error(`the cluster manager at ${state.controlUrl} does not answer (${String(error)}); is \`make run\` still running?`);
  }
  process.stdout.write(JSON.stringify(await res.json(), null, 2) + '\n');
  if (!res.ok) process.exitCode = res.status === 400 ? 2 : 1;
}

async function main(argv: string[]): Promise<void> {
  const [command = 'run', ...args] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return;
  }
  if (command !== 'run' && command !== 'run-tls') return send(command, args);
  const env = process.env;
  return run({
    tls: command === 'run-tls',
    nodes: positiveInteger('CLUSTER_NODES', env['CLUSTER_NODES'] ?? '2', 1),
    gateways: positiveInteger('CLUSTER_GATEWAYS', env['CLUSTER_GATEWAYS'] ?? '1', 1),
    ports: env['CLUSTER_PORTS'] === 'auto' ? 'auto' : 'fixed',
    env: passThroughEnv(env),
  });
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`cluster: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
});
