/**
 * Local cluster manager: `make run` and the operators' playground on one machine.
 *
 *   node --import tsx scripts/cluster.ts run            start etcd, memcached, a gateway and 2 nodes; Ctrl-C stops all
 *   node --import tsx scripts/cluster.ts scale 3        (from another terminal) add or drain nodes until 3 run
 *   node --import tsx scripts/cluster.ts add | drain <nodeId> | kill <nodeId> | status | stop
 *
 * `run` listens on a loopback control port written to .run/cluster.json; the other commands talk to it, so every
 * process stays a child of `run` and is reaped by it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { freePort, LocalCluster } from '@messaging-server/testkit';

const STATE_DIR = '.run';
const STATE_FILE = `${STATE_DIR}/cluster.json`;

interface RunOptions {
  nodes: number;
  /** `fixed`: gateway 8080, nodes 8081…, internal 9081… (the contract's defaults); `auto`: free ports. */
  ports: 'fixed' | 'auto';
}

function describe(cluster: LocalCluster): Record<string, unknown> {
  return {
    demo: `${cluster.gatewayUrl}/`,
    connect: `${cluster.gatewayUrl}/connect`,
    gateways: cluster.gateways.map((g) => g.url),
    nodes: [...cluster.nodes.values()].map((n) => ({ nodeId: n.nodeId, listeningAddress: n.listeningAddress, internal: n.internalUrl, pid: n.process.pid })),
    etcd: cluster.etcdEndpoint,
    etcdPrefix: cluster.prefix,
    memcached: cluster.memcachedAddress,
  };
}

async function control(cluster: LocalCluster, command: string, arg: string | undefined): Promise<unknown> {
  switch (command) {
    case 'status':
      return describe(cluster);
    case 'add':
      return { added: (await cluster.addNode()).nodeId };
    case 'scale':
      await cluster.scale(Number(arg));
      return describe(cluster);
    case 'drain':
      return { nodeId: arg, exit: await cluster.drainNode(String(arg)) };
    case 'kill':
      await cluster.killNode(String(arg));
      return { nodeId: arg, killed: true };
    default:
      throw new Error(`unknown command ${command}`);
  }
}

async function run(options: RunOptions): Promise<void> {
  mkdirSync(`${STATE_DIR}/logs`, { recursive: true });
  process.stdout.write(`starting etcd, memcached, a gateway and ${String(options.nodes)} nodes (logs in ${STATE_DIR}/logs/)\n`);
  const fixed = options.ports === 'fixed';
  const cluster = await LocalCluster.start({
    nodes: options.nodes,
    prefix: '/messaging-server/',
    logDir: `${STATE_DIR}/logs`,
    ...(fixed
      ? {
          gatewayPorts: [8080],
          nodePorts: Array.from({ length: options.nodes }, (_, i) => ({ port: 8081 + i, internalPort: 9081 + i })),
        }
      : {}),
  });
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping the cluster\n');
    controlServer.close();
    await cluster.stop();
    rmSync(STATE_FILE, { force: true });
    process.stdout.write('stopped\n');
    process.exit(0);
  };
  const controlServer = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://control');
    const [, command, arg] = url.pathname.split('/');
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (command === 'stop') {
      reply(200, { stopping: true });
      void stopAll();
      return;
    }
    control(cluster, command ?? '', arg).then(
      (body) => reply(200, body),
      (error: unknown) => reply(400, { error: error instanceof Error ? error.message : String(error) }),
    );
  });
  controlServer.listen(await freePort(), '127.0.0.1');
  await once(controlServer, 'listening');
  const address = controlServer.address();
  const controlUrl = `http://127.0.0.1:${String(typeof address === 'object' && address ? address.port : 0)}`;
  writeFileSync(STATE_FILE, JSON.stringify({ controlUrl, ...describe(cluster) }, null, 2));
  process.on('SIGINT', () => void stopAll());
  process.on('SIGTERM', () => void stopAll());
  const nodes = [...cluster.nodes.values()].map((n) => `${n.nodeId} ${n.listeningAddress}`).join(', ');
  process.stdout.write(
    `ready: demo ${cluster.gatewayUrl}/ | connect POST ${cluster.gatewayUrl}/connect | nodes ${nodes} | etcd ${cluster.etcdEndpoint} | memcached ${cluster.memcachedAddress} | Ctrl-C to stop\n`,
  );
}

async function send(command: string, arg: string | undefined): Promise<void> {
  let state: { controlUrl: string };
  try {
    state = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as { controlUrl: string };
  } catch {
    throw new Error(`no running cluster (${STATE_FILE} is missing): start one with \`make run\``);
  }
  const res = await fetch(`${state.controlUrl}/${command}${arg === undefined ? '' : `/${encodeURIComponent(arg)}`}`, {
    method: 'POST',
    signal: AbortSignal.timeout(120_000),
  });
  process.stdout.write(JSON.stringify(await res.json(), null, 2) + '\n');
  if (!res.ok) process.exitCode = 1;
}

const [command = 'run', arg] = process.argv.slice(2);
const main =
  command === 'run'
    ? run({ nodes: Number(process.env['CLUSTER_NODES'] ?? 2), ports: process.env['CLUSTER_PORTS'] === 'auto' ? 'auto' : 'fixed' })
    : send(command, arg);
main.catch((error: unknown) => {
  process.stderr.write(`cluster: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
