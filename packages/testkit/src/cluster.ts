import { existsSync } from 'node:fs';
import { loadConfig } from '@messaging-server/core';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { startEtcd, uniquePrefix, type EtcdServer } from './etcd-server.js';
import { freePort } from './free-port.js';
import { startMemcached, type MemcachedServer } from './memcached-server.js';
import { ManagedProcess, type ExitStatus } from './process.js';
import { waitFor } from './wait-for.js';

// The built CLI of the declared cli workspace (its dist, not its bin wrapper, so no shell shim is in between).
const CLI = join(dirname(createRequire(import.meta.url).resolve('@messaging-server/cli/package.json')), 'dist', 'bin', 'messaging-server.js');

export interface ClusterOptions {
  nodes?: number;
  gateways?: number;
  /** Extra MSG_* variables for every process. */
  env?: Record<string, string>;
  /** Extra MSG_* variables for nodes only (e.g. MSG_PUBLIC_BASE_URL) and for gateways only (MSG_TRUSTED_PROXIES). */
  nodeEnv?: Record<string, string>;
  gatewayEnv?: Record<string, string>;
  /** Fixed ports for `make run`; tests leave them out and get free ports. */
  gatewayPorts?: number[];
  nodePorts?: { port: number; internalPort: number }[];
  /** Prints each process's log lines, prefixed with its name. */
  echo?: (name: string, line: string) => void;
  /**
   * Starts etcd with authentication (a user whose role may use /test/) and memcached with SASL, and gives every
   * process those credentials (MSG_ETCD_USERNAME/PASSWORD, MSG_MEMCACHED_USERNAME/PASSWORD).
   */
  storeCredentials?: { etcd: { username: string; password: string }; memcached: { username: string; password: string } };
  /** Start a new etcd/memcached (default), or use existing ones. */
  etcdEndpoint?: string;
  memcachedAddress?: string;
  /** Each process's output is also appended to `<logDir>/<name>.log`. */
  logDir?: string;
  /** How long a started node may take to be ready before its start fails (and it is stopped); default 20 s. */
  nodeReadyTimeoutMs?: number;
  /** Defaults to a unique prefix, so runs never see each other's keys. */
  prefix?: string;
  /**
   * The `messaging-server` CLI the gateways and nodes run; defaults to this checkout's build. The bench points it at
   * another commit's build to measure before and after side by side.
   */
  cli?: string;
}

export interface ClusterGateway {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly process: ManagedProcess;
}

export interface ClusterNode {
  readonly nodeId: string;
  readonly port: number;
  readonly internalPort: number;
  readonly listeningAddress: string;
  readonly internalUrl: string;
  readonly process: ManagedProcess;
}

function listeningAddressOf(env: NodeJS.ProcessEnv): string {
  try {
    return loadConfig('node', env).publicUrl;
  } catch {
    return `http://127.0.0.1:${String(env['MSG_PORT'])}/ws`; // the node itself will say what is wrong
  }
}

async function fetchOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * A local cluster of real processes: etcd, memcached, gateways and nodes (the built CLI), all children of this
 * process. Used by integration tests (`startCluster`) and by `make run` (scripts/cluster.ts).
 */
export class LocalCluster {
  readonly gateways: ClusterGateway[] = [];
  readonly nodes = new Map<string, ClusterNode>();
  private nextNodeIndex = 1;

  private constructor(
    readonly options: ClusterOptions,
    readonly etcd: EtcdServer | undefined,
    readonly memcached: MemcachedServer | undefined,
    readonly etcdEndpoint: string,
    readonly memcachedAddress: string,
    readonly prefix: string,
  ) {}

  static async start(options: ClusterOptions = {}): Promise<LocalCluster> {
    const cli = options.cli ?? CLI;
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`make build\` first`);
    const credentials = options.storeCredentials;
    const [etcd, memcached] = await Promise.all([
      options.etcdEndpoint ? undefined : startEtcd(credentials ? { user: { ...credentials.etcd, prefix: '/test/' } } : {}),
      options.memcachedAddress ? undefined : startMemcached(credentials ? { sasl: credentials.memcached } : {}),
    ]);
    const cluster = new LocalCluster(
      options,
      etcd,
      memcached,
      options.etcdEndpoint ?? (etcd as EtcdServer).endpoint,
      options.memcachedAddress ?? (memcached as MemcachedServer).address,
      options.prefix ?? `${uniquePrefix('cluster')}`,
    );
    try {
      const nodeCount = options.nodes ?? 2;
      await Promise.all(Array.from({ length: nodeCount }, (_, i) => cluster.addNode({ ports: options.nodePorts?.[i] })));
      const gatewayCount = options.gateways ?? 1;
      await Promise.all(Array.from({ length: gatewayCount }, (_, i) => cluster.addGateway(options.gatewayPorts?.[i])));
      await cluster.waitForGatewaysToSee(nodeCount);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  get gatewayUrl(): string {
    const first = this.gateways[0];
    if (!first) throw new Error('cluster has no gateway');
    return first.url;
  }

  /** The environment every process gets: the cluster's etcd, memcached and prefixes, plus the options' extras. */
  baseEnv(): NodeJS.ProcessEnv {
    return {
      PATH: process.env['PATH'],
      MSG_ETCD_ENDPOINTS: this.etcdEndpoint,
      MSG_ETCD_PREFIX: this.prefix,
      MSG_MEMCACHED_SERVERS: this.memcachedAddress,
      MSG_MEMCACHED_PREFIX: `${this.prefix.replaceAll('/', '')}:`,
      MSG_HOST: '127.0.0.1',
      ...storeEnv(this.options.storeCredentials),
      ...this.options.env,
    };
  }

  private spawn(name: string, command: 'gateway' | 'node', env: NodeJS.ProcessEnv): ManagedProcess {
    const echo = this.options.echo;
    const logFile = this.options.logDir ? `${this.options.logDir}/${name}.log` : undefined;
    return new ManagedProcess(name, process.execPath, [this.options.cli ?? CLI, command], env, echo ? (line) => echo(name, line) : undefined, logFile);
  }

  async addGateway(port?: number): Promise<ClusterGateway> {
    const name = `gateway-${String(this.gateways.length + 1)}`;
    return this.withPortRetry(port === undefined, async () => {
      const chosen = port ?? (await freePort());
      const proc = this.spawn(name, 'gateway', { ...this.baseEnv(), ...this.options.gatewayEnv, MSG_PORT: String(chosen) });
      const gateway = { name, port: chosen, url: `http://127.0.0.1:${String(chosen)}`, process: proc };
      await this.waitReady(proc, `${gateway.url}/healthz`);
      this.gateways.push(gateway);
      return gateway;
    });
  }

  async addNode(options: { nodeId?: string; ports?: { port: number; internalPort: number } | undefined; env?: Record<string, string> } = {}): Promise<ClusterNode> {
    const nodeId = options.nodeId ?? `node-${String(this.nextNodeIndex++)}`;
    return this.withPortRetry(options.ports === undefined, async () => {
      const port = options.ports?.port ?? (await freePort());
      const internalPort = options.ports?.internalPort ?? (await freePort());
      const env = {
        ...this.baseEnv(),
        ...this.options.nodeEnv,
        MSG_NODE_ID: nodeId,
        MSG_PORT: String(port),
        MSG_INTERNAL_PORT: String(internalPort),
        ...options.env,
      };
      const proc = this.spawn(nodeId, 'node', env);
      const node: ClusterNode = {
        nodeId,
        port,
        internalPort,
        // What the node itself advertises (its own port, MSG_PUBLIC_URL, or its path behind the proxy).
        listeningAddress: listeningAddressOf(env),
        internalUrl: `http://127.0.0.1:${String(internalPort)}`,
        process: proc,
      };
      this.nodes.set(nodeId, node);
      try {
        await this.waitReady(proc, `${node.internalUrl}/readyz`, this.options.nodeReadyTimeoutMs);
      } catch (error) {
        this.nodes.delete(nodeId);
        throw error;
      }
      return node;
    });
  }

  /**
   * A port from freePort() can be taken by another process before ours binds it (tests run side by side): such a
   * start is retried on fresh ports. Fixed ports (make run) fail at once, with the process's own reason.
   */
  private async withPortRetry<T>(freePorts: boolean, start: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await start();
      } catch (error) {
        if (!freePorts || attempt >= 3 || !String(error).includes('EADDRINUSE')) throw error;
      }
    }
  }

  private async waitReady(proc: ManagedProcess, url: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(
      async () => {
        if (!proc.running) throw new Error(`${proc.name} exited: ${proc.logs().slice(-2000)}`);
        return fetchOk(url);
      },
      { timeoutMs, what: `${proc.name} at ${url}` },
    ).catch(async (error: unknown) => {
      if (!proc.running) throw new Error(`${proc.name} exited during start:\n${proc.logs().slice(-3000)}`);
      // Nobody holds it once its start failed (stop() would not find it): a scale run left such a node running.
      await proc.stop(5_000).catch(() => undefined);
      throw error;
    });
  }

  /** Resolves once every gateway reports `count` active nodes in its metrics (its view of the registry). */
  async waitForGatewaysToSee(count: number, timeoutMs = 10_000): Promise<void> {
    await Promise.all(
      this.gateways.map((g) =>
        waitFor(
          async () => {
            const res = await fetch(`${g.url}/metrics`, { signal: AbortSignal.timeout(1000) });
            const text = await res.text();
            const match = /^msg_nodes\{state="active"\} (\d+)/m.exec(text);
            return match !== null && Number(match[1]) === count;
          },
          { timeoutMs, what: `${g.name} to see ${String(count)} active nodes` },
        ),
      ),
    );
  }

  node(nodeId: string): ClusterNode {
    const node = this.nodes.get(nodeId);
    if (!node) throw new Error(`no node ${nodeId} in this cluster`);
    return node;
  }

  /** SIGTERM: the node drains and exits; resolves with its exit status. */
  async drainNode(nodeId: string, graceMs = 60_000): Promise<ExitStatus> {
    const status = await this.node(nodeId).process.stop(graceMs);
    this.nodes.delete(nodeId);
    return status;
  }

  /** SIGKILL: a crash. */
  async killNode(nodeId: string): Promise<void> {
    await this.node(nodeId).process.kill();
    this.nodes.delete(nodeId);
  }

  /** Adds or drains nodes until `count` run. */
  async scale(count: number): Promise<void> {
    while (this.nodes.size < count) await this.addNode();
    const extra = [...this.nodes.keys()].slice(count);
    await Promise.all(extra.map((id) => this.drainNode(id)));
  }

  logs(): string {
    return [...this.gateways.map((g) => g.process), ...[...this.nodes.values()].map((n) => n.process)]
      .map((p) => p.logs())
      .join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.process.stop(15_000)));
    await Promise.all(this.gateways.map((g) => g.process.stop(5_000)));
    await Promise.all([this.etcd?.remove(), this.memcached?.stop()]);
  }
}

export function startCluster(options: ClusterOptions = {}): Promise<LocalCluster> {
  return LocalCluster.start(options);
}

function storeEnv(credentials: ClusterOptions['storeCredentials']): Record<string, string> {
  if (!credentials) return {};
  return {
    MSG_ETCD_USERNAME: credentials.etcd.username,
    MSG_ETCD_PASSWORD: credentials.etcd.password,
    MSG_MEMCACHED_USERNAME: credentials.memcached.username,
    MSG_MEMCACHED_PASSWORD: credentials.memcached.password,
  };
}
