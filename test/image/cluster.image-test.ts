// Issue 25: the production image, built and run for real. A Docker daemon of our own (no bridge, host network only)
// builds the Dockerfile; etcd and memcached run on the host; a gateway and two nodes run as containers of the image,
// each started from what the rendered k8s/overlays/local gives its pod (command, user, read-only root, variables,
// grace period). Run by `make test-image` (.ci/run runs it after `make test`). The stores take credentials as in
// production (issue 28): etcd with users and roles on the overlay's prefix, memcached with SASL; the containers get
// the user names and passwords the production overlay takes from its Secret, and a store without them refuses.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { freePort, startEtcd, startMemcached, waitFor, type EtcdServer, type MemcachedServer } from '@messaging-server/testkit';
import { buildImage, mib, type BuiltImage } from '../../scripts/image/build-image.js';
import { startDockerDaemon, DOCKER_BRIDGE, type DockerDaemon } from '../../scripts/image/docker-daemon.js';
import { IMAGE_TAG } from '../../scripts/image/image-tag.js';
import { closeClients, MessageLedger, startClients, every, type TrackedClient } from '../support/fault-clients.js';
import { inspect, logs, processEnvironment, runContainer, tcpSocketsOf, waitReady, type Container } from '../support/image-containers.js';
import { podPlan, renderKustomization, type K8sObject, type PodPlan } from '../support/k8s-pod.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OVERLAY = path.join(ROOT, 'k8s', 'overlays', 'local');
const CLIENTS = 24;
/** The users the production overlay's Secret (msg-store-credentials) would hold; the local overlay has none. */
const ETCD_USER = { username: 'msg', password: 'image-etcd-password-5c1f8a2d' };
const MEMCACHED_USER = { username: 'msg', password: 'image-memcached-password-9b3e7d4a' };

interface Figures {
  buildSeconds: number;
  baseSeconds: number;
  sizeBytes: number;
  startSeconds: number;
  stopSeconds: number;
  graceSeconds: number;
}

describe('the production image: a cluster of containers configured from k8s/ (issue 25)', function () {
  this.timeout(1_200_000);
  const started = Date.now();
  let daemon: DockerDaemon;
  let built: BuiltImage;
  let etcd: EtcdServer;
  let memcached: MemcachedServer;
  let objects: K8sObject[];
  let gateway: Container;
  let nodes: Container[] = [];
  let gatewayUrl: string;
  let clients: TrackedClient[] = [];
  const ledger = new MessageLedger();
  const figures: Partial<Figures> = {};

  before(async function () {
    daemon = await startDockerDaemon(path.join(ROOT, '.cache', 'docker'));
    built = await buildImage(daemon, { root: ROOT, tag: IMAGE_TAG, log: () => undefined });
    Object.assign(figures, { buildSeconds: built.buildSeconds, baseSeconds: built.baseSeconds, sizeBytes: built.sizeBytes });
    objects = renderKustomization(OVERLAY);
    const prefix = (objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('msg-config'))?.['data'] as Record<string, string>)['MSG_ETCD_PREFIX'] ?? '?';
    [etcd, memcached] = await Promise.all([startEtcd({ user: { ...ETCD_USER, prefix } }), startMemcached({ sasl: MEMCACHED_USER })]);
    const startedAt = Date.now();
    const gatewayPort = await freePort();
    gatewayUrl = `http://127.0.0.1:${String(gatewayPort)}`;
    const gatewayPlan = podPlan(objects, 'Deployment/msg-gateway', 'gateway', {
      podName: 'msg-gateway-0',
      podIp: '127.0.0.1',
      replace: { ...backends(), MSG_PORT: String(gatewayPort) },
      add: onLoopback(),
      ports: { 8080: gatewayPort },
    });
    const nodePlans = await Promise.all([0, 1].map((ordinal) => nodePlan(ordinal)));
    // The daemon's state is kept between runs: containers an interrupted run left behind would hold the names.
    await daemon.docker(['rm', '--force', 'msg-gateway-0', 'msg-node-0', 'msg-node-1']).catch(() => undefined);
    [gateway, ...nodes] = await Promise.all([
      runContainer(daemon, built.tag, 'msg-gateway-0', gatewayPlan),
      ...nodePlans.map((plan, ordinal) => runContainer(daemon, built.tag, `msg-node-${String(ordinal)}`, plan)),
    ]);
    await Promise.all([gateway, ...nodes].map((c) => waitReady(daemon, c, 180_000)));
    figures.startSeconds = (Date.now() - startedAt) / 1000;
  });

  after(async function () {
    closeClients(clients);
    if (this.test?.parent?.tests.some((t) => t.state === 'failed')) {
      for (const c of [gateway, ...nodes]) if (c) console.log(`--- ${c.name}\n${await logs(daemon, c.name)}`);
    }
    if (daemon) {
      await daemon.docker(['rm', '--force', ...[gateway, ...nodes].filter(Boolean).map((c) => c.name)]).catch(() => undefined);
      await daemon.stop();
    }
    await Promise.all([etcd?.remove(), memcached?.stop()]);
    const f = figures;
    console.log(
      `      image test: build ${f.buildSeconds?.toFixed(1) ?? '?'} s (base ${f.baseSeconds?.toFixed(1) ?? '?'} s), ` +
        `size ${f.sizeBytes === undefined ? '?' : mib(f.sizeBytes)}, three containers ready in ${f.startSeconds?.toFixed(1) ?? '?'} s, ` +
        `docker stop of a node ${f.stopSeconds?.toFixed(1) ?? '?'} s of a ${String(f.graceSeconds ?? '?')} s grace period, ` +
        `whole test ${((Date.now() - started) / 1000).toFixed(0)} s`,
    );
  });

  function backends(): Record<string, string> {
    return { MSG_ETCD_ENDPOINTS: etcd.endpoint, MSG_MEMCACHED_SERVERS: memcached.address };
  }

  // A pod listens on its own IP; on the host network a container must keep to loopback instead. The store users are
  // what the production overlay adds from its Secret.
  function onLoopback(): Record<string, string> {
    return {
      MSG_HOST: '127.0.0.1',
      MSG_ETCD_USERNAME: ETCD_USER.username,
      MSG_ETCD_PASSWORD: ETCD_USER.password,
      MSG_MEMCACHED_USERNAME: MEMCACHED_USER.username,
      MSG_MEMCACHED_PASSWORD: MEMCACHED_USER.password,
    };
  }

  async function nodePlan(ordinal: number): Promise<PodPlan> {
    const [publicPort, internalPort] = [await freePort(), await freePort()];
    return podPlan(objects, 'StatefulSet/msg-node', 'node', {
      podName: `msg-node-${String(ordinal)}`,
      podIp: '127.0.0.1',
      // Every pod has 8081 and 9081 on its own IP; containers sharing the host need a port each, and clients reach
      // the node directly instead of through the proxy (the node serves `<base>/n/<id>/ws` itself).
      replace: {
        ...backends(),
        MSG_PORT: String(publicPort),
        MSG_INTERNAL_PORT: String(internalPort),
        MSG_INTERNAL_URL: `http://127.0.0.1:${String(internalPort)}`,
        MSG_PUBLIC_BASE_URL: `http://127.0.0.1:${String(publicPort)}`,
      },
      add: onLoopback(),
      ports: { 8081: publicPort, 9081: internalPort },
    });
  }

  it('runs the image the local overlay deploys, with the manifests’ command, user, root and variables', async function () {
    const image = JSON.parse(await daemon.docker(['image', 'inspect', built.tag])) as { Config: { User: string; Entrypoint: string[]; Env: string[] } }[];
    const config = image[0]?.Config;
    // The image's own user is the one the manifests run as (numeric there, so the kubelet can check runAsNonRoot).
    const passwd = await daemon.docker(['exec', gateway.name, 'cat', '/etc/passwd']);
    const entry = passwd.split('\n').find((line) => line.startsWith(`${config?.User ?? '?'}:`))?.split(':');
    // The variables the image's own CLI knows (its config schema, as built): a name it would ignore is a drift too.
    const help = await daemon.docker(['exec', gateway.name, 'messaging-server', '--help']);
    const known = new Set((/^Variables: (.*)$/m.exec(help)?.[1] ?? '').split(', '));
    expect(known.size).to.be.greaterThan(20);
    for (const c of [gateway, ...nodes]) {
      expect(c.plan.image, c.name).to.equal(built.tag);
      expect(`${entry?.[2] ?? ''}:${entry?.[3] ?? ''}`, `${c.name}: the image's user ${config?.User ?? ''}`).to.equal(c.plan.user);
      const seen = await inspect(daemon, c.name);
      expect(seen.Config.User, c.name).to.equal(c.plan.user);
      expect([seen.Path, ...seen.Args], c.name).to.deep.equal([...(c.plan.command ?? config?.Entrypoint ?? []), ...c.plan.args]);
      expect(seen.HostConfig.NetworkMode, c.name).to.equal('host');
      expect(seen.HostConfig.ReadonlyRootfs, c.name).to.equal(true);
      const env = await processEnvironment(daemon, c.name);
      for (const [key, value] of Object.entries(c.plan.env)) expect(env[key], `${c.name}: ${key}`).to.equal(value);
      const msg = Object.keys(env).filter((key) => key.startsWith('MSG_'));
      expect(msg.filter((key) => !known.has(key)), `${c.name}: variables the image does not know`).to.deep.equal([]);
      expect(msg.sort(), `${c.name}: MSG_* variables`).to.deep.equal(Object.keys(c.plan.env).filter((k) => k.startsWith('MSG_')).sort());
      expect(env['NODE_ENV'], c.name).to.equal('production');
    }
    // The process writes nothing outside the manifests' emptyDir: the root is read-only and it still runs.
    const write = await daemon.docker(['exec', nodes[0]?.name ?? '', 'sh', '-c', 'touch /app/x 2>&1; touch /tmp/x && echo tmp-ok']).catch((e: unknown) => String(e));
    expect(write).to.match(/Read-only file system/).and.to.match(/tmp-ok/);
  });

  it('serves /connect, a SockJS session and messages across the two nodes', async function () {
    const ids = Array.from({ length: CLIENTS }, (_, i) => `image-u${String(i)}`);
    clients = await startClients([gatewayUrl], ids, ledger, { limit: 8 });
    expect(new Set(clients.map((c) => c.nodeId))).to.deep.equal(new Set(['msg-node-0', 'msg-node-1']));
    const across = clients.flatMap((from) => clients.filter((to) => to.nodeId !== from.nodeId).slice(0, 2).map((to) => [from, to] as const));
    await Promise.all(across.map(([from, to]) => ledger.send(from, to.userId)));
    await ledger.settle(10_000);
    const report = ledger.report();
    expect(report.acked, JSON.stringify(report)).to.equal(across.length);
    expect(report.silentlyLost, JSON.stringify(ledger.suspects())).to.equal(0);
  });

  it('lists both nodes with msgctl inside a container, and etcd refuses it with a wrong password', async function () {
    const rows = JSON.parse(await daemon.docker(['exec', gateway.name, 'msgctl', 'nodes', '--json'])) as { nodeId: string; state: string; listeningAddress: string }[];
    expect(rows.map((r) => [r.nodeId, r.state])).to.deep.equal([['msg-node-0', 'active'], ['msg-node-1', 'active']]);
    expect(rows[0]?.listeningAddress).to.equal(`${nodes[0]?.plan.env['MSG_PUBLIC_BASE_URL'] ?? ''}/n/msg-node-0/ws`);
    // The same command with a wrong etcd password: etcd refuses it (the stores take only the configured users).
    const refused = await daemon.docker(['exec', '--env', 'MSG_ETCD_PASSWORD=wrong-password-for-the-test', gateway.name, 'msgctl', 'nodes', '--json']).then(
      (out) => `listed: ${out}`,
      (error: unknown) => String(error),
    );
    expect(refused).to.not.match(/^listed/).and.to.not.contain('msg-node-0');
  });

  it('drains a node on docker stop: its clients move to the other node, nothing is lost, exit 0 inside the grace period', async function () {
    const [leaving, staying] = nodes as [Container, Container];
    const movers = clients.filter((c) => c.nodeId === leaving.name);
    expect(movers.length).to.be.greaterThan(0);
    const pick = (): TrackedClient => clients[Math.floor(Math.random() * clients.length)] as TrackedClient;
    const traffic = every(50, () => void ledger.send(pick(), pick().userId));
    const grace = leaving.plan.graceSeconds;
    figures.graceSeconds = grace;
    const stopAt = Date.now();
    // SIGTERM, then SIGKILL once the manifests' grace period is over: what the kubelet does.
    await daemon.docker(['stop', '--time', String(grace), leaving.name], { timeoutMs: (grace + 30) * 1000 });
    figures.stopSeconds = (Date.now() - stopAt) / 1000;
    const state = (await inspect(daemon, leaving.name)).State;
    expect(state.ExitCode, await logs(daemon, leaving.name)).to.equal(0);
    expect(figures.stopSeconds).to.be.below(grace);
    await waitFor(() => movers.every((c) => c.nodeId === staying.name), { timeoutMs: 30_000, what: 'every client of the drained node on the other one' });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await traffic.stop();
    await ledger.settle(30_000);
    const report = ledger.report();
    expect(report.silentlyLost, JSON.stringify({ report, suspects: ledger.suspects() })).to.equal(0);
    expect(report.errorButReceived + report.duplicates, JSON.stringify(report)).to.equal(0);
    for (const c of movers) expect(c.closes.map((x) => x.code), c.userId).to.include(4000);
    const rows = JSON.parse(await daemon.docker(['exec', gateway.name, 'msgctl', 'nodes', '--json'])) as { nodeId: string }[];
    expect(rows.map((r) => r.nodeId)).to.deep.equal([staying.name]);
  });

  it('holds no dev dependency, test file, TypeScript source or build CA bundle', async function () {
    // The whole file system the unprivileged user can read (what it cannot, /root and apt's partial lists, is empty).
    const files = (await daemon.docker(['exec', gateway.name, 'sh', '-c', 'find / -xdev -type f 2>/dev/null; true'])).split('\n').filter(Boolean);
    expect(files.filter((f) => f.startsWith('/app/')).length).to.be.greaterThan(100);
    const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const devOnly = Object.entries(lock.packages).filter(([key, p]) => p.dev === true && key.startsWith('node_modules/')).map(([key]) => `/app/${key}/`);
    expect(devOnly.length).to.be.greaterThan(50);
    expect(files.filter((f) => devOnly.some((dir) => f.startsWith(dir))), 'dev dependencies').to.deep.equal([]);
    expect(files.filter((f) => /\.[mc]?ts$/.test(f)), 'TypeScript').to.deep.equal([]);
    const testLike = /\.test\.|\/testkit\/|\/testing\.js$|\/(test|tests|__tests__)\//;
    expect(files.filter((f) => testLike.test(f)), 'tests').to.deep.equal([]);
    expect(files.filter((f) => /\.build-ca\.pem$|\.map$/.test(f)), 'build leftovers').to.deep.equal([]);
    const config = JSON.parse(await daemon.docker(['image', 'inspect', '--format', '{{json .Config.Env}}', built.tag])) as string[];
    expect(config.filter((e) => e.startsWith('NODE_EXTRA_CA_CERTS')), 'CA in the runtime env').to.deep.equal([]);
  });

  it('keeps to the host network: the daemon made no bridge, and the containers talk on loopback only', async function () {
    const networks = (await daemon.docker(['network', 'ls', '--format', '{{.Driver}}'])).split('\n').filter(Boolean);
    expect(networks.sort()).to.deep.equal(['host', 'null']);
    const links = readdirSync('/sys/class/net');
    expect(links.filter((l) => l === DOCKER_BRIDGE || l.startsWith('br-')), 'links').to.deep.equal([]);
    for (const c of [gateway, nodes[1] as Container]) {
      const sockets = tcpSocketsOf((await inspect(daemon, c.name)).State.Pid);
      expect(sockets.length, c.name).to.be.greaterThan(2);
      const outside = sockets.filter((s) => !s.local.startsWith('127.0.0.1:') || !(s.remote.startsWith('127.0.0.1:') || s.remote === '0.0.0.0:0'));
      expect(outside, c.name).to.deep.equal([]);
    }
  });

  it('is built from a Dockerfile whose base image the build can find or make', function () {
    expect(built.base.how).to.match(/pinned base|local stand-in/);
    expect(existsSync(path.join(ROOT, '.build-ca.pem')), 'the CA copy is removed after the build').to.equal(false);
    expect(execFileSync('git', ['check-ignore', '.cache/image'], { cwd: ROOT, encoding: 'utf8' }).trim()).to.equal('.cache/image');
  });
});
