// Runs inside the test's network namespace (`ip netns exec <ns> node --conditions=source --import tsx e2e-driver.ts`)
// and does there what the test asks: start a cluster, drive Chromium pages, drain a node. The test process stays in
// the host namespace, where it could reach neither the cluster nor the browser, and sends one JSON command per line
// on stdin; every answer is one JSON line on stdout. See ./e2e-remote.ts for the other side.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { freePort, LocalCluster, LocalProxy, reservedPort, startCoturn, type CoturnServer, type ProxyRoute } from '@messaging-server/testkit';

export interface DriverRequest {
  id: number;
  cmd: string;
  args?: Record<string, unknown>;
}
export type DriverResponse = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

interface PageState {
  page: Page;
  /** Every listeningKey the page received from `/connect`, so the test can check the log never shows one. */
  keys: string[];
  console: string[];
  errors: string[];
  /** URLs (without query: it carries keys) of the page's WebSocket and HTTP requests to node paths. */
  websockets: string[];
  nodeRequests: string[];
}

/** Page methods the test may call, with JSON arguments. */
const PAGE_ACTIONS = new Set(['goto', 'fill', 'click', 'press', 'textContent', 'evaluate', 'waitForFunction', 'screenshot', 'setViewportSize', 'close']);

const address = process.env['E2E_ADDRESS'] ?? '127.0.0.1';
let cluster: LocalCluster | undefined;
let proxy: LocalProxy | undefined;
let proxyDir: string | undefined;
let coturn: CoturnServer | undefined;
let context: BrowserContext | undefined;
let profile: string | undefined;
const pages = new Map<string, PageState>();

const routesOf = (c: LocalCluster): ProxyRoute[] => [...c.nodes.values()].map((n) => ({ nodeId: n.nodeId, port: n.port }));

/**
 * The cluster behind the proxy with the shipped routes (k8s/base/proxy/routes.conf), TLS on the namespace address:
 * nodes listen on loopback only and advertise their path on the proxy's origin; the browser reaches nothing else.
 */
async function startProxied(): Promise<unknown> {
  // Chosen before the cluster starts (the nodes advertise it) and bound after: outside the ephemeral range.
  const port = await reservedPort();
  const origin = `https://${address}:${String(port)}`;
  cluster = await LocalCluster.start({
    nodes: 0,
    env: { MSG_CLUSTER_SECRET: 'e2e-cluster-secret', MSG_LOG_LEVEL: 'info' },
    nodeEnv: { MSG_PUBLIC_BASE_URL: origin },
    gatewayEnv: { MSG_TRUSTED_PROXIES: '127.0.0.1' },
  });
  for (const nodeId of ['node-1', 'node-2']) await cluster.addNode({ nodeId });
  await cluster.waitForGatewaysToSee(2);
  proxyDir = await mkdtemp(join(tmpdir(), 'msg-e2e-proxy-'));
  proxy = await LocalProxy.start({
    dir: proxyDir,
    host: address,
    listenHost: '0.0.0.0',
    port,
    gatewayPorts: cluster.gateways.map((g) => g.port),
    nodes: routesOf(cluster),
  });
  return { gatewayUrl: proxy.origin, nodes: nodeList() };
}

async function startCluster(args: { proxy?: boolean; env?: Record<string, string> }): Promise<unknown> {
  if (args.proxy) return startProxied();
  // Every process listens on all of the namespace's interfaces; clients get the namespace address, as in a real
  // deployment where the browser is not on the nodes' loopback.
  cluster = await LocalCluster.start({
    nodes: 0,
    env: { MSG_HOST: '0.0.0.0', MSG_CLUSTER_SECRET: 'e2e-cluster-secret', MSG_LOG_LEVEL: 'info', ...args.env },
  });
  for (const nodeId of ['node-1', 'node-2']) {
    const port = await freePort();
    const internalPort = await freePort();
    await cluster.addNode({ nodeId, ports: { port, internalPort }, env: { MSG_PUBLIC_URL: `http://${address}:${String(port)}/ws` } });
  }
  await cluster.waitForGatewaysToSee(2);
  const gateway = cluster.gateways[0];
  if (!gateway) throw new Error('cluster has no gateway');
  return { gatewayUrl: `http://${address}:${String(gateway.port)}`, nodes: nodeList() };
}

function nodeList(): { nodeId: string; listeningAddress: string }[] {
  return [...(cluster?.nodes.values() ?? [])].map((n) => ({ nodeId: n.nodeId, listeningAddress: n.listeningAddress }));
}

async function launch(args: { secureOrigin?: string; ignoreHttpsErrors?: boolean }): Promise<unknown> {
  profile = await mkdtemp(join(tmpdir(), 'msg-e2e-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env['CHROMIUM'] ?? '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1000, height: 900 },
    // The proxy's certificate comes from a CA made for this run.
    ignoreHTTPSErrors: args.ignoreHttpsErrors === true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Chromium hides local addresses behind random `<uuid>.local` mDNS names by default. Nothing in the namespace
      // answers mDNS, so the peers could not resolve each other's names: ask for plain host candidates instead.
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      // A fake camera (a test pattern), granted without a prompt, so the screenshot shows video both ways.
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      // getUserMedia needs a secure context; the demo is plain http on the namespace address.
      ...(args.secureOrigin ? [`--unsafely-treat-insecure-origin-as-secure=${args.secureOrigin}`] : []),
    ],
  });
  // tsx wraps named functions in `__name(...)`, which does not exist in the page.
  await context.addInitScript('window.__name = f => f');
  return { version: context.browser()?.version() ?? 'unknown' };
}

async function openPage(args: { name: string }): Promise<unknown> {
  if (!context) throw new Error('browser not launched');
  const page = await context.newPage();
  const state: PageState = { page, keys: [], console: [], errors: [], websockets: [], nodeRequests: [] };
  const withoutQuery = (url: string): string => url.split('?')[0] ?? url;
  page.on('websocket', (socket) => state.websockets.push(withoutQuery(socket.url())));
  page.on('request', (request) => {
    if (/\/n\/[^/]+\/ws\//.test(request.url())) state.nodeRequests.push(withoutQuery(request.url()));
  });
  page.on('console', (message) => state.console.push(`${message.type()}: ${message.text()}`.slice(0, 500)));
  page.on('pageerror', (error) => state.errors.push(error.message));
  page.on('response', (response) => {
    if (response.status() >= 400) state.console.push(`http ${String(response.status())} ${response.url()}`);
    if (response.request().method() !== 'POST' || !response.url().endsWith('/connect')) return;
    response
      .json()
      .then((body: { listeningKey?: unknown }) => {
        if (typeof body.listeningKey === 'string') state.keys.push(body.listeningKey);
      })
      .catch(() => undefined);
  });
  pages.set(args.name, state);
  return null;
}

function pageState(name: unknown): PageState {
  const state = pages.get(String(name));
  if (!state) throw new Error(`no page ${String(name)}`);
  return state;
}

async function pageAction(args: { name: string; action: string; params: unknown[] }): Promise<unknown> {
  const { page } = pageState(args.name);
  if (!PAGE_ACTIONS.has(args.action)) throw new Error(`page action ${args.action} is not allowed`);
  const method = (page as unknown as Record<string, (...params: unknown[]) => Promise<unknown>>)[args.action];
  if (!method) throw new Error(`page has no ${args.action}`);
  const value = await method.apply(page, args.params);
  if (Buffer.isBuffer(value)) return value.length;
  // waitForFunction returns a handle; the test only needs to know it resolved.
  if (value !== null && typeof value === 'object' && 'dispose' in value) return true;
  return value ?? null;
}

/** (Re)starts coturn on the namespace address with this secret; a restart keeps the port, so URLs stay valid. */
async function turn(args: { secret: string; port?: number }): Promise<unknown> {
  const port = args.port ?? coturn?.port;
  await coturn?.stop();
  coturn = await startCoturn({ address, secret: args.secret, ...(port === undefined ? {} : { port }) });
  return { url: coturn.url, port: coturn.port };
}

async function drain(args: { nodeId: string }): Promise<unknown> {
  if (!cluster) throw new Error('no cluster');
  const started = Date.now();
  const status = await cluster.drainNode(args.nodeId, 30_000);
  // Routable until it exited, so its clients got their close through the proxy; now the route goes.
  await proxy?.setNodes(routesOf(cluster));
  return { ...status, ms: Date.now() - started };
}

function diagnostics(): unknown {
  const perPage = Object.fromEntries(
    [...pages].map(([name, s]) => [name, { errors: s.errors, console: s.console.slice(-30) }]),
  );
  return { pages: perPage, clusterLogs: cluster?.logs().slice(-6000) ?? '', turnLogs: coturn?.process.logs().slice(-3000) ?? '' };
}

let stopping: Promise<void> | undefined;
function shutdown(): Promise<void> {
  stopping ??= (async () => {
    await context?.close().catch(() => undefined);
    await proxy?.stop().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
    await coturn?.stop().catch(() => undefined);
    for (const dir of [profile, proxyDir]) if (dir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  })();
  return stopping;
}

async function dispatch(request: DriverRequest): Promise<unknown> {
  const args = (request.args ?? {}) as never;
  switch (request.cmd) {
    case 'start':
      return startCluster(args);
    case 'turn':
      return turn(args);
    case 'launch':
      return launch(args);
    case 'open':
      return openPage(args);
    case 'page':
      return pageAction(args);
    case 'keys':
      return pageState((args as { name: string }).name).keys;
    case 'traffic': {
      const state = pageState((args as { name: string }).name);
      return { websockets: state.websockets, nodeRequests: state.nodeRequests };
    }
    case 'nodes':
      return nodeList();
    case 'drain':
      return drain(args);
    case 'diagnostics':
      return diagnostics();
    case 'shutdown':
      await shutdown();
      return null;
    default:
      throw new Error(`unknown command ${request.cmd}`);
  }
}

let orphaned = false;
function reply(response: DriverResponse): void {
  if (!orphaned) process.stdout.write(`${JSON.stringify(response)}\n`);
}
// The test may be gone; a write to its closed pipe must not crash us before we clean up.
process.stdout.on('error', () => undefined);

/** Last resort, also after a crash: SIGKILL everything else in the namespace (Chromium, cluster, etcd, memcached). */
function killNamespace(): void {
  const name = process.env['E2E_NETNS'];
  if (!name) return;
  try {
    const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8', timeout: 5000 }).split('\n').filter(Boolean).map(Number);
    for (const pid of pids) if (pid !== process.pid) process.kill(pid, 'SIGKILL');
  } catch {
    // the test's own cleanup removes the namespace anyway
  }
}
process.on('exit', killNamespace);

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (!line.trim()) return;
  const request = JSON.parse(line) as DriverRequest;
  dispatch(request).then(
    (value) => reply({ id: request.id, ok: true, value }),
    (error: unknown) => reply({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) }),
  );
});
// The test went away (or asked us to stop): leave no process behind. A clean stop removes etcd's data dir and the
// browser profile; if it hangs, the exit handler kills whatever is left.
const exit = (): void => {
  orphaned = true;
  void Promise.race([shutdown(), sleep(10_000)]).finally(() => process.exit(0));
};
lines.on('close', exit);
process.once('SIGTERM', exit);
process.once('SIGINT', exit);
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
