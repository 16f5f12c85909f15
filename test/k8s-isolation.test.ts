// Issue 28, over the rendered manifests: who may open connections to the stores, what the internet-facing proxy may
// open connections to, no service-account token in any pod, and an overlay that says what it is. Before: the etcd and
// memcached policies admitted every pod named messaging-server, the proxy included; the proxy could reach anything;
// every pod got a token; the hostport overlay claimed production settings it does not have.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import { K8S, kustomizations, renderAsShipped, type K8sObject } from './support/k8s-render.js';

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: unknown[];
}
interface Peer {
  podSelector?: Selector;
  namespaceSelector?: Selector;
  ipBlock?: unknown;
}
interface Rule {
  from?: Peer[];
  to?: Peer[];
  ports?: { port?: number | string; protocol?: string }[];
}
interface PolicySpec {
  podSelector: Selector;
  policyTypes?: string[];
  ingress?: Rule[];
  egress?: Rule[];
}
interface Workload {
  name: string;
  labels: Record<string, string>;
  containers: IContainer[];
  spec: IPodTemplateSpec['spec'];
}

/** Prometheus in the monitoring namespace: the one outside peer the policies admit, on purpose (metrics). */
const isScraper = (peer: Peer): boolean =>
  peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'monitoring' &&
  peer.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'prometheus';

/** matchLabels only: a selector with expressions, or an empty one, is treated as selecting every pod. */
function selects(selector: Selector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  const entries = Object.entries(selector.matchLabels ?? {});
  if (entries.length === 0 || (selector.matchExpressions ?? []).length > 0) return true;
  return entries.every(([key, value]) => labels[key] === value);
}

function workloads(objects: K8sObject[]): Workload[] {
  return objects
    .filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind))
    .map((o) => {
      const template = (o['spec'] as { template: IPodTemplateSpec }).template;
      return { name: o.metadata.name, labels: template.metadata?.labels ?? {}, containers: template.spec?.containers ?? [], spec: template.spec };
    });
}

/** The number behind a rule's port for a container of `target` (named ports resolved), or undefined for any port. */
function portOf(port: number | string | undefined, target: Workload): number | undefined {
  if (typeof port !== 'string') return port;
  return target.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === port)?.containerPort ?? -1;
}

const policies = (objects: K8sObject[]): PolicySpec[] => objects.filter((o) => o.kind === 'NetworkPolicy').map((o) => o['spec'] as PolicySpec);

/**
 * Whether the ingress policies over `target` let pods of `source` open a connection to `port`. A pod no Ingress policy
 * selects takes connections from anyone. Peers in other namespaces (namespaceSelector) never match these pods, the
 * scraper aside.
 */
function ingressAllows(objects: K8sObject[], source: Workload, target: Workload, port: number): boolean {
  const covering = policies(objects).filter((p) => (p.policyTypes ?? ['Ingress']).includes('Ingress') && selects(p.podSelector, target.labels));
  if (covering.length === 0) return true;
  return covering.some((p) =>
    (p.ingress ?? []).some((rule) => {
      const ports = rule.ports ?? [];
      if (ports.length > 0 && !ports.some((q) => q.port === undefined || portOf(q.port, target) === port)) return false;
      if (!rule.from || rule.from.length === 0) return true;
      return rule.from.some((peer) => !isScraper(peer) && (peer.ipBlock !== undefined || (!peer.namespaceSelector && selects(peer.podSelector, source.labels))));
    }),
  );
}

/** Whether the egress policies over `source` let it open a connection to `port` of `target` pods. */
function egressAllows(objects: K8sObject[], source: Workload, target: Workload, port: number): boolean {
  const covering = policies(objects).filter((p) => (p.policyTypes ?? []).includes('Egress') && selects(p.podSelector, source.labels));
  if (covering.length === 0) return true;
  return covering.some((p) =>
    (p.egress ?? []).some((rule) => {
      const ports = rule.ports ?? [];
      if (ports.length > 0 && !ports.some((q) => q.port === undefined || portOf(q.port, target) === port)) return false;
      if (!rule.to || rule.to.length === 0) return true;
      return rule.to.some((peer) => peer.ipBlock !== undefined || (!peer.namespaceSelector && selects(peer.podSelector, target.labels)));
    }),
  );
}

const reaches = (objects: K8sObject[], source: Workload, target: Workload, port: number): boolean =>
  ingressAllows(objects, source, target, port) && egressAllows(objects, source, target, port);

function containerPortNamed(w: Workload, name: string): number {
  const port = w.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === name)?.containerPort;
  if (port === undefined) throw new Error(`${w.name} has no port named ${name}`);
  return port;
}

describe('k8s isolation: stores, proxy egress, service-account tokens, overlay labels (issue 28)', function () {
  this.timeout(60_000);
  const renders = new Map<string, K8sObject[]>();
  before(function () {
    for (const dir of kustomizations()) renders.set(path.relative(K8S, dir), renderAsShipped(dir));
  });
  const production = (): K8sObject[] => renders.get(path.join('overlays', 'production')) ?? [];
  const byName = (objects: K8sObject[], name: string): Workload => {
    const found = workloads(objects).find((w) => w.name === name);
    if (!found) throw new Error(`no workload ${name}`);
    return found;
  };

  it('lets only gateways and nodes (and the etcd members) reach etcd and memcached, in every render', function () {
    for (const [name, objects] of renders) {
      const [etcd, memcached, proxy, gateway, node] = ['etcd', 'memcached', 'msg-proxy', 'msg-gateway', 'msg-node'].map((w) => byName(objects, w)) as Workload[];
      const stores: [Workload, number][] = [
        [etcd as Workload, containerPortNamed(etcd as Workload, 'client')],
        [memcached as Workload, containerPortNamed(memcached as Workload, 'memcache')],
      ];
      for (const [store, port] of stores) {
        expect(reaches(objects, proxy as Workload, store, port), `${name}: msg-proxy → ${store.name}:${String(port)}`).to.equal(false);
        expect(reaches(objects, gateway as Workload, store, port), `${name}: msg-gateway → ${store.name}`).to.equal(true);
        expect(reaches(objects, node as Workload, store, port), `${name}: msg-node → ${store.name}`).to.equal(true);
        // The production overlay's etcd-auth Job creates etcd's users (k8s/overlays/production/stores/).
        const allowed = new Set(['msg-gateway', 'msg-node', store.name, ...(store.name === 'etcd' ? ['etcd-auth'] : [])]);
        const others = workloads(objects).filter((w) => !allowed.has(w.name));
        for (const other of others) expect(reaches(objects, other, store, port), `${name}: ${other.name} → ${store.name}`).to.equal(false);
      }
    }
  });

  it('lets the proxy open connections only to the nodes public port and the gateways, in the production overlay', function () {
    const objects = production();
    const proxy = byName(objects, 'msg-proxy');
    const node = byName(objects, 'msg-node');
    const gateway = byName(objects, 'msg-gateway');
    expect(reaches(objects, proxy, node, containerPortNamed(node, 'public'))).to.equal(true);
    expect(reaches(objects, proxy, gateway, containerPortNamed(gateway, 'http'))).to.equal(true);
    expect(reaches(objects, proxy, node, containerPortNamed(node, 'internal')), 'node internal port').to.equal(false);
    // Egress alone, whatever the targets' ingress says (a store policy edited later must not be the only fence).
    for (const [target, port] of [
      [byName(objects, 'etcd'), 'client'],
      [byName(objects, 'memcached'), 'memcache'],
      [node, 'internal'],
    ] as const) {
      expect(egressAllows(objects, proxy, target, containerPortNamed(target, port)), `egress to ${target.name}:${port}`).to.equal(false);
    }
    // The one rule open to every address is DNS.
    const open = policies(objects)
      .filter((p) => selects(p.podSelector, proxy.labels))
      .flatMap((p) => p.egress ?? [])
      .filter((rule) => !rule.to || rule.to.length === 0);
    expect(open.flatMap((rule) => (rule.ports ?? []).map((q) => q.port))).to.deep.equal([53, 53]);
  });

  it('lets the production etcd-auth Job reach etcd (it creates the users there) and not memcached', function () {
    const objects = production();
    const [job, etcd, memcached] = ['etcd-auth', 'etcd', 'memcached'].map((w) => byName(objects, w)) as Workload[];
    expect(reaches(objects, job as Workload, etcd as Workload, containerPortNamed(etcd as Workload, 'client'))).to.equal(true);
    expect(reaches(objects, job as Workload, memcached as Workload, containerPortNamed(memcached as Workload, 'memcache'))).to.equal(false);
  });

  it('mounts no service-account token in any pod of any render', function () {
    for (const [name, objects] of renders) {
      const pods = workloads(objects);
      expect(pods.length, name).to.be.greaterThan(4);
      for (const w of pods) expect(w.spec?.automountServiceAccountToken, `${name}: ${w.name}`).to.equal(false);
    }
  });

  it('has the hostport overlay say, in its file and its rendered namespace, that it is not production settings', function () {
    const objects = renders.get(path.join('overlays', 'hostport')) ?? [];
    const config = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('msg-config'));
    expect((config?.['data'] as Record<string, string>)['MSG_PRODUCTION']).to.equal('false');
    const namespace = objects.find((o) => o.kind === 'Namespace');
    expect(namespace?.metadata.annotations?.['messaging-server/profile']).to.match(/not for production: production mode off, no \/connect authentication/);
    const header = readFileSync(path.join(K8S, 'overlays', 'hostport', 'kustomization.yaml'), 'utf8');
    expect(header).to.match(/NOT a production overlay/);
    expect(header).to.not.match(/Production settings .* as in \.\.\/production/);
    expect(header).to.contain('MSG_PRODUCTION=false');
  });
});
