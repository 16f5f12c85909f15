import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';
import { createLocalCa, type LocalCa } from './local-ca.js';
import { ManagedProcess } from './process.js';
import { waitFor } from './wait-for.js';

/** The routing rules shipped in the proxy's ConfigMap: the local proxy includes this very file. */
export const SHARED_ROUTES = fileURLToPath(new URL('../../../k8s/base/proxy/routes.conf', import.meta.url));

export interface ProxyRoute {
  nodeId: string;
  /** The node's public port on 127.0.0.1. */
  port: number;
}

export interface LocalProxyOptions {
  /** Configuration, certificates and nginx's temporary files go here. */
  dir: string;
  /** The address clients use, named in the certificate; the proxy also listens on it unless `listenHost` says. */
  host: string;
  listenHost?: string;
  /** Default: a free port. */
  port?: number;
  gatewayPorts: number[];
  nodes: ProxyRoute[];
  logFile?: string;
}

/**
 * What differs from Kubernetes (upstream resolution, the listen socket with TLS) around the shared routes.
 * Paths inside are relative to `dir`, which is nginx's prefix (`-p`).
 */
export function localProxyConfig(options: { dir: string; listen: string; ca: LocalCa; gatewayPorts: number[]; nodes: ProxyRoute[] }): Record<string, string> {
  const temp = join(options.dir, 'temp');
  const gateways = options.gatewayPorts.map((port) => `    server 127.0.0.1:${String(port)};`).join('\n');
  const nodes = options.nodes.map((n) => `    ${JSON.stringify(n.nodeId)} 127.0.0.1:${String(n.port)};`).join('\n');
  return {
    'nginx.conf': `daemon off;
pid ${join(options.dir, 'nginx.pid')};
error_log stderr warn;
events {
    worker_connections 4096;
}
http {
    client_body_temp_path ${temp}/client;
    proxy_temp_path ${temp}/proxy;
    fastcgi_temp_path ${temp}/fastcgi;
    uwsgi_temp_path ${temp}/uwsgi;
    scgi_temp_path ${temp}/scgi;
    access_log off;
    include msg/upstreams.conf;
    include ${SHARED_ROUTES};
}
`,
    'msg/listen.conf': `listen ${options.listen} ssl;
ssl_certificate ${options.ca.serverCert};
ssl_certificate_key ${options.ca.serverKey};
`,
    'msg/upstreams.conf': `# Local upstream resolution: node ids and gateways on loopback ports (Kubernetes uses per-pod DNS instead).
upstream msg_gateway {
${gateways}
}
map $host $msg_gateway_upstream {
    default msg_gateway;
}
map $msg_node_id $msg_node_upstream {
    default '';
${nodes}
}
`,
  };
}

/** GET over TLS trusting only `ca`; resolves with the status, or 0 when the proxy does not answer. */
function statusOf(url: string, ca: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { ca, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

/**
 * A real nginx (Debian's) in front of a local cluster, terminating TLS with a CA made at start, routing
 * `/n/<nodeId>/…` to each node and everything else to the gateways with the shared routes of k8s/base/proxy.
 */
export class LocalProxy {
  private routes: ProxyRoute[];

  private constructor(
    private readonly options: LocalProxyOptions & { port: number },
    readonly ca: LocalCa,
    private readonly caPem: Buffer,
    readonly process: ManagedProcess,
  ) {
    this.routes = options.nodes;
  }

  /** `https://<host>:<port>`: the demo page, `/connect`, and the base of every node's address. */
  get origin(): string {
    return `https://${this.options.host}:${String(this.options.port)}`;
  }

  get port(): number {
    return this.options.port;
  }

  static async start(given: LocalProxyOptions): Promise<LocalProxy> {
    // nginx resolves a relative `-c` and every path in its config against `-p`, so a relative `dir` would be doubled.
    const options = { ...given, dir: resolve(given.dir) };
    const port = options.port ?? (await freePort());
    const all = { ...options, port };
    const ca = await createLocalCa(join(options.dir, 'tls'), [...new Set([options.host, '127.0.0.1', 'localhost'])]);
    await LocalProxy.writeConfig(all, ca, options.nodes);
    const proc = new ManagedProcess(
      'proxy',
      'nginx',
      ['-e', 'stderr', '-p', `${options.dir}/`, '-c', join(options.dir, 'nginx.conf')],
      { PATH: process.env['PATH'] },
      undefined,
      options.logFile,
    );
    const proxy = new LocalProxy(all, ca, await readFile(ca.caCert), proc);
    try {
      await proxy.waitForRoutes(options.nodes, []);
    } catch (error) {
      await proc.stop(2000);
      throw error;
    }
    return proxy;
  }

  private static async writeConfig(options: LocalProxyOptions & { port: number }, ca: LocalCa, nodes: ProxyRoute[]): Promise<void> {
    const listen = `${options.listenHost ?? options.host}:${String(options.port)}`;
    const files = localProxyConfig({ dir: options.dir, listen, ca, gatewayPorts: options.gatewayPorts, nodes });
    await mkdir(join(options.dir, 'msg'), { recursive: true });
    await mkdir(join(options.dir, 'temp'), { recursive: true });
    for (const [name, text] of Object.entries(files)) await writeFile(join(options.dir, name), text);
  }

  /** Routes exactly these nodes from now on (nginx reloads on SIGHUP); resolves once the proxy does so. */
  async setNodes(nodes: ProxyRoute[]): Promise<void> {
    const removed = this.routes.filter((old) => !nodes.some((n) => n.nodeId === old.nodeId));
    this.routes = nodes;
    await LocalProxy.writeConfig(this.options, this.ca, nodes);
    this.process.signal('SIGHUP');
    await this.waitForRoutes(nodes, removed);
  }

  /** Every node's SockJS info answers through the proxy, and removed ones are 404 (positive signals both). */
  private async waitForRoutes(present: ProxyRoute[], removed: ProxyRoute[]): Promise<void> {
    const info = (nodeId: string): string => `${this.origin}/n/${nodeId}/ws/info`;
    await waitFor(
      async () => {
        if (!this.process.running) throw new Error(`nginx exited:\n${this.process.logs().slice(-3000)}`);
        const statuses = await Promise.all([
          statusOf(`${this.origin}/healthz`, this.caPem),
          ...present.map((n) => statusOf(info(n.nodeId), this.caPem)),
        ]);
        const gone = await Promise.all(removed.map((n) => statusOf(info(n.nodeId), this.caPem)));
        return statuses.every((s) => s === 200) && gone.every((s) => s === 404);
      },
      { timeoutMs: 15_000, what: `the proxy at ${this.origin} to route ${present.map((n) => n.nodeId).join(', ') || 'the gateway'}` },
    );
  }

  async stop(): Promise<void> {
    // nginx stops at once on SIGTERM (SIGQUIT would wait for every open SockJS connection).
    await this.process.stop(5000);
  }
}
