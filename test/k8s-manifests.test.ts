// Offline validation of the Kubernetes manifests: every kustomization in k8s/ is rendered with `kubectl kustomize`,
// each object is validated against the Kubernetes schemas shipped with kubernetes-models, walked field by field
// against the same models' type definitions (the schemas accept unknown fields), and checked for what a schema
// cannot see: images, env variables the config schema knows, probes on ports the process serves, a grace period
// above the drain timeout, and references between objects (Services, HPAs, PDBs, NetworkPolicies, Secrets).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { loadAll } from 'js-yaml';
import ts from 'typescript';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IContainerPort } from 'kubernetes-models/v1/ContainerPort';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { IIoK8sApimachineryPkgApisMetaV1LabelSelector as LabelSelector } from '@kubernetes-models/apimachinery/apis/meta/v1/LabelSelector';
import { ConfigError, configVariables, loadConfig, type NodeConfig, type ProcessKind } from '@messaging-server/core';
import { createLocalCa, localProxyConfig, SHARED_ROUTES as SHARED_ROUTE_OF_LOCAL_RUN } from '@messaging-server/testkit';
import { K8S, kustomizations, needsInputs, render, renderWithInputs, type K8sObject } from './support/k8s-render.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** How the image starts the processes (Dockerfile ENTRYPOINT); a container may repeat it as its command. */
const ENTRYPOINT = ['node', 'packages/cli/dist/bin/messaging-server.js'];
/** Time a node needs after its drain timeout: closing servers, revoking its lease, exiting. */
const DRAIN_MARGIN_SECONDS = 10;
/**
 * Which health endpoint each probe must use. Liveness never depends on etcd or memcached. A node leaves readiness
 * while it drains or its registry is out of sync; a gateway must be synced to start, then stays in rotation through
 * backend outages, as the contract's failure behaviour wants (k8s/base/gateway.yaml says why).
 */
const PROBE_PATHS: Record<'gateway' | 'node', Partial<Record<ProbeKind, string>>> = {
  node: { readiness: '/readyz', liveness: '/healthz' },
  gateway: { startup: '/readyz', readiness: '/healthz', liveness: '/healthz' },
};
type ProbeKind = 'readiness' | 'liveness' | 'startup';
/** The one scraper allowed on the node's internal port besides nodes and gateways (docs/operations.md). */
const SCRAPER = { namespace: 'monitoring', labels: { 'app.kubernetes.io/name': 'prometheus' } };
/** Secrets an operator creates out of band (docs/operations.md); only overlays that ship the cluster secret must ship them. */
const EXTERNAL_SECRETS = new Set(['msg-cluster-secret', 'msg-proxy-tls', 'msg-store-credentials']);
/** What such a secret holds when made as docs/operations.md says (`openssl rand -base64 32`): production mode checks its strength. */
const EXTERNAL_SECRET_SAMPLE = 'q3Jm0v8Yt4ZkQe9Rw1Lx5Np7Hb2Cd6Fg8Sj0Ua3Vi5T=';
/** The one routing definition of the proxy, shipped in its ConfigMap and included by the local run. */
const SHARED_ROUTES = path.join(K8S, 'base', 'proxy', 'routes.conf');
/** The runtime image's own environment (Dockerfile `ENV` lines), under every container's. */
const IMAGE_ENV = imageEnvironment();

function imageEnvironment(): Record<string, string> {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const runtime = dockerfile.slice(dockerfile.search(/^FROM .* AS runtime$/m));
  const env: Record<string, string> = {};
  for (const match of runtime.matchAll(/^ENV (\w+)=(\S+)$/gm)) env[match[1] as string] = match[2] as string;
  return env;
}

// Rendering: ./support/k8s-render.ts

const label = (o: K8sObject): string => `${o.kind}/${o.metadata.name}`;

// ---------------------------------------------------------------------------------------------------------------
// Schema validation (kubernetes-models' ajv validators) and strict fields (its TypeScript definitions)

type ModelClass = new (data: unknown) => { validate(): void };

async function loadModels(kinds: Iterable<string>): Promise<Map<string, ModelClass>> {
  const models = new Map<string, ModelClass>();
  for (const key of kinds) {
    const [apiVersion, kind] = splitKey(key);
    try {
      const module = (await import(modelModule(apiVersion, kind))) as Record<string, ModelClass>;
      const model = module[kind];
      if (model) models.set(key, model);
    } catch {
      // An unknown apiVersion/kind is reported by schemaProblems.
    }
  }
  return models;
}

function splitKey(key: string): [string, string] {
  const at = key.lastIndexOf('/');
  return [key.slice(0, at), key.slice(at + 1)];
}

const keyOf = (o: { apiVersion: string; kind: string }): string => `${o.apiVersion}/${o.kind}`;

/** Core kinds from kubernetes-models, the Prometheus Operator's (monitoring component) from its package. */
const modelModule = (apiVersion: string, kind: string): string =>
  apiVersion.startsWith('monitoring.coreos.com/')
    ? `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`
    : `kubernetes-models/${apiVersion}/${kind}`;

/**
 * Builds a TypeScript program over kubernetes-models' definitions of the given kinds. The definitions are generated
 * from the same OpenAPI document as the validators, with every property listed, so walking an object against them
 * finds fields that Kubernetes would reject (or, without strict validation, silently drop).
 */
function createFieldWalker(kinds: Iterable<string>): (o: K8sObject) => string[] {
  const list = [...kinds];
  const virtual = path.join(ROOT, '__k8s_manifest_types__.ts');
  const source = list
    .map((key, i) => {
      const [apiVersion, kind] = splitKey(key);
      return `import type { I${kind} as T${i} } from '${modelModule(apiVersion, kind)}';\nexport type K${i} = T${i};`;
    })
    .join('\n');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    target: ts.ScriptTarget.ES2022,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, lang, ...rest) =>
    name === virtual ? ts.createSourceFile(name, source, lang) : getSourceFile.call(host, name, lang, ...rest);
  host.fileExists = (name) => name === virtual || fileExists.call(host, name);
  host.readFile = (name) => (name === virtual ? source : readFile.call(host, name));
  const program = ts.createProgram([virtual], options, host);
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(virtual);
  const types = new Map<string, ts.Type>();
  for (const statement of file?.statements ?? []) {
    if (!ts.isTypeAliasDeclaration(statement)) continue;
    const type = checker.getTypeAtLocation(statement.name);
    const key = list[Number(statement.name.text.slice(1))];
    // An unresolved import types as `any`: that kind has no definition, which the walker reports.
    if (key !== undefined && !(type.flags & ts.TypeFlags.Any)) types.set(key, type);
  }

  const walk = (value: unknown, declared: ts.Type, at: string, out: string[]): void => {
    if (value === null || typeof value !== 'object') return;
    const type = checker.getNonNullableType(declared);
    if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return;
    const members = type.isUnion() ? type.types : [type];
    if (Array.isArray(value)) {
      const array = members.find((m) => checker.isArrayType(m));
      const element = array && checker.getTypeArguments(array as ts.TypeReference)[0];
      if (element) value.forEach((item, i) => walk(item, element, `${at}[${String(i)}]`, out));
      return;
    }
    const objectType = members.find((m) => m.flags & ts.TypeFlags.Object && !checker.isArrayType(m));
    if (!objectType) return; // a type mismatch, which the schema validator reports
    const index = checker.getIndexInfoOfType(objectType, ts.IndexKind.String);
    for (const [field, child] of Object.entries(value)) {
      const property = checker.getPropertyOfType(objectType, field);
      if (property) walk(child, checker.getTypeOfSymbol(property), `${at}.${field}`, out);
      else if (index) walk(child, index.type, `${at}.${field}`, out);
      else out.push(`${at}.${field}`);
    }
  };

  return (o) => {
    const type = types.get(keyOf(o));
    if (!type) return [`${label(o)}: no type definition for ${keyOf(o)}`];
    const out: string[] = [];
    walk(o, type, '', out);
    return out.map((problem) => `${label(o)}: unknown field ${problem.slice(1)}`);
  };
}

function schemaProblems(o: K8sObject, models: Map<string, ModelClass>): string[] {
  const Model = models.get(keyOf(o));
  if (!Model) return [`${label(o)}: no schema for ${keyOf(o)}`];
  try {
    new Model(o).validate();
    return [];
  } catch (error) {
    return [`${label(o)}: ${error instanceof Error ? error.message : String(error)}`];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// What a schema cannot see

interface Workload {
  object: K8sObject;
  template: IPodTemplateSpec;
}

function workloadsOf(objects: K8sObject[]): Workload[] {
  const kinds = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet']);
  return objects
    .filter((o) => kinds.has(o.kind))
    .map((object) => {
      const spec = (object['spec'] ?? {}) as { template?: IPodTemplateSpec };
      return { object, template: spec.template ?? {} };
    });
}

function selects(selector: LabelSelector | undefined, labels: Record<string, string> = {}): boolean {
  if (!selector) return false;
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpressions = (selector.matchExpressions ?? []).every((e) => {
    const value = labels[e.key];
    switch (e.operator) {
      case 'In':
        return value !== undefined && (e.values ?? []).includes(value);
      case 'NotIn':
        return value === undefined || !(e.values ?? []).includes(value);
      case 'Exists':
        return value !== undefined;
      case 'DoesNotExist':
        return value === undefined;
      default:
        return false;
    }
  });
  return byLabels && byExpressions;
}

/** A Service or NetworkPolicy selector is a bare label map or a LabelSelector; empty selects nothing here. */
const asSelector = (labels: Record<string, string> | undefined): LabelSelector | undefined =>
  labels && Object.keys(labels).length > 0 ? { matchLabels: labels } : undefined;

function processKindOf(container: IContainer): ProcessKind | undefined {
  const command = container.command ?? [];
  const args = container.args ?? [];
  const argv = command.length > 0 ? [...command, ...args] : [...ENTRYPOINT, ...args];
  if (argv[0] !== ENTRYPOINT[0] || argv[1] !== ENTRYPOINT[1]) return undefined;
  const kind = argv[2];
  return kind === 'gateway' || kind === 'node' || kind === 'standalone' ? kind : undefined;
}

function isMessagingContainer(container: IContainer): boolean {
  return (container.image ?? '').includes('messaging-server') || processKindOf(container) !== undefined;
}

/** Port name or number → the container port it means. */
function containerPort(container: IContainer, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return (container.ports ?? []).some((p) => p.containerPort === port) ? port : undefined;
  return (container.ports ?? []).find((p) => p.name === port)?.containerPort;
}

function probeTarget(probe: IProbe | undefined): { path?: string; port: number | string | undefined } | undefined {
  if (!probe) return undefined;
  if (probe.httpGet) return { path: probe.httpGet.path ?? '/', port: probe.httpGet.port };
  if (probe.tcpSocket) return { port: probe.tcpSocket.port };
  if (probe.grpc) return { port: probe.grpc.port };
  return undefined;
}

/** Sample values for what the downward API and Secrets fill in at run time, so the config can be loaded here. */
function sampleFieldValue(fieldPath: string, podName: string): string {
  switch (fieldPath) {
    case 'metadata.name':
      return podName;
    case 'metadata.namespace':
      return 'messaging-server';
    case 'status.podIP':
      return '10.0.0.10';
    case 'status.hostIP':
      return '192.0.2.10';
    case 'spec.nodeName':
      return 'k8s-node-a';
    default:
      return 'sample';
  }
}

interface Context {
  objects: K8sObject[];
  byKindName: Map<string, K8sObject>;
  workloads: Workload[];
  /** Whether every referenced ConfigMap and Secret must be in the render (an overlay that ships its own). */
  selfContained: boolean;
}

function podProblems(w: Workload, ctx: Context): string[] {
  const problems: string[] = [];
  const name = label(w.object);
  const pod = w.template.spec;
  const selector = (w.object['spec'] as { selector?: LabelSelector } | undefined)?.selector;
  if (!selects(selector, w.template.metadata?.labels)) problems.push(`${name}: selector does not match its pod labels`);
  if (!pod) return [...problems, `${name}: no pod spec`];
  if (w.object.kind === 'StatefulSet') {
    const serviceName = (w.object['spec'] as { serviceName?: string }).serviceName;
    const service = ctx.byKindName.get(`Service/${String(serviceName)}`);
    if (!service) problems.push(`${name}: serviceName ${String(serviceName)} is not a Service here`);
    else if ((service['spec'] as { clusterIP?: string }).clusterIP !== 'None')
      problems.push(`${name}: serviceName ${String(serviceName)} is not headless`);
  }
  const podSecurity = pod.securityContext ?? {};
  for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
    const at = `${name} container ${container.name}`;
    const security = container.securityContext ?? {};
    if (typeof container.image !== 'string' || container.image.trim() === '') problems.push(`${at}: no image`);
    if ((security.runAsNonRoot ?? podSecurity.runAsNonRoot) !== true) problems.push(`${at}: runAsNonRoot is not true`);
    const uid = security.runAsUser ?? podSecurity.runAsUser;
    if (uid === undefined || uid === 0) problems.push(`${at}: no numeric non-root runAsUser`);
    if (security.readOnlyRootFilesystem !== true) problems.push(`${at}: root filesystem is writable`);
    if (security.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation is not false`);
    if (!(security.capabilities?.drop ?? []).includes('ALL')) problems.push(`${at}: capabilities do not drop ALL`);
    const { requests = {}, limits = {} } = container.resources ?? {};
    if (requests['cpu'] === undefined || requests['memory'] === undefined) problems.push(`${at}: no cpu/memory requests`);
    if (limits['memory'] === undefined) problems.push(`${at}: no memory limit`);
    for (const [kind, probe] of [
      ['readiness', container.readinessProbe],
      ['liveness', container.livenessProbe],
      ['startup', container.startupProbe],
    ] as const) {
      const target = probeTarget(probe);
      if (target && containerPort(container, target.port) === undefined)
        problems.push(`${at}: ${kind} probe port ${String(target.port)} is not a container port`);
    }
    problems.push(...envProblems(container, at, ctx));
    if (isMessagingContainer(container)) problems.push(...messagingProblems(w, container, at, ctx));
  }
  const annotations = w.template.metadata?.annotations ?? {};
  if (annotations['prometheus.io/scrape'] === 'true') {
    const port = Number(annotations['prometheus.io/port']);
    if (!pod.containers.some((c) => containerPort(c, port) !== undefined))
      problems.push(`${name}: prometheus.io/port ${String(annotations['prometheus.io/port'])} is not a container port`);
    if (!annotations['prometheus.io/path']?.startsWith('/')) problems.push(`${name}: no prometheus.io/path`);
  }
  return problems;
}

/** References the kubelet resolves when it starts the container: ConfigMaps, Secrets, `$(VAR)` expansion. */
function envProblems(container: IContainer, at: string, ctx: Context): string[] {
  const problems: string[] = [];
  const defined = new Set<string>();
  for (const source of container.envFrom ?? []) {
    const ref = source.configMapRef?.name ?? source.secretRef?.name;
    const kind = source.configMapRef ? 'ConfigMap' : 'Secret';
    const object = ctx.byKindName.get(`${kind}/${String(ref)}`);
    if (!object) {
      problems.push(`${at}: envFrom ${kind} ${String(ref)} is not in the render`);
      continue;
    }
    for (const key of Object.keys((object['data'] ?? {}) as object)) defined.add(`${source.prefix ?? ''}${key}`);
  }
  for (const variable of container.env ?? []) {
    for (const match of (variable.value ?? '').matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
      if (!defined.has(match[1] ?? '')) problems.push(`${at}: ${variable.name} uses $(${String(match[1])}) before it is defined`);
    }
    const secret = variable.valueFrom?.secretKeyRef;
    if (secret?.name !== undefined) {
      const object = ctx.byKindName.get(`Secret/${secret.name}`);
      if (object && secret.optional !== true && !Object.keys((object['data'] ?? object['stringData'] ?? {}) as object).includes(secret.key))
        problems.push(`${at}: Secret ${secret.name} has no key ${secret.key}`);
      if (!object && (ctx.selfContained || !EXTERNAL_SECRETS.has(secret.name)))
        problems.push(`${at}: ${variable.name} refers to Secret ${secret.name}, which is not in the render`);
    }
    const configMap = variable.valueFrom?.configMapKeyRef;
    if (configMap) {
      const object = ctx.byKindName.get(`ConfigMap/${configMap.name}`);
      if (!object || !Object.keys((object['data'] ?? {}) as object).includes(configMap.key))
        problems.push(`${at}: ${variable.name} refers to a missing ConfigMap key ${configMap.name}/${configMap.key}`);
    }
    defined.add(variable.name);
  }
  return problems;
}

/** The environment the process would see, with downward-API and Secret values replaced by samples. */
function environmentOf(container: IContainer, podName: string, ctx: Context): { env: Record<string, string>; set: string[] } {
  const env: Record<string, string> = {};
  const image = isMessagingContainer(container) ? IMAGE_ENV : {};
  for (const source of container.envFrom ?? []) {
    const object = source.configMapRef && ctx.byKindName.get(`ConfigMap/${source.configMapRef.name}`);
    for (const [key, value] of Object.entries((object?.['data'] ?? {}) as Record<string, string>))
      env[`${source.prefix ?? ''}${key}`] = value;
    // A Secret the overlay generates (from its site inputs) is in the render with its values.
    const secret = source.secretRef && ctx.byKindName.get(`Secret/${source.secretRef.name}`);
    for (const [key, value] of Object.entries((secret?.['data'] ?? {}) as Record<string, string>))
      env[`${source.prefix ?? ''}${key}`] = Buffer.from(value, 'base64').toString('utf8');
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom;
    // An optional key (the previous cluster secret, set only during a rotation) is absent in the sample.
    if (from?.secretKeyRef?.optional === true) continue;
    env[variable.name] = from?.fieldRef
      ? sampleFieldValue(from.fieldRef.fieldPath, podName)
      : from?.configMapKeyRef
        ? String(((ctx.byKindName.get(`ConfigMap/${from.configMapKeyRef.name}`)?.['data'] ?? {}) as Record<string, string>)[from.configMapKeyRef.key])
        : from
          ? EXTERNAL_SECRET_SAMPLE
          : (variable.value ?? '').replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, ref: string) => env[ref] ?? whole);
  }
  return { env: { ...image, ...env }, set: Object.keys(env) };
}

/** The messaging-server processes: config names and values, ports, probes, drain and node identity. */
function messagingProblems(w: Workload, container: IContainer, at: string, ctx: Context): string[] {
  const problems: string[] = [];
  const kind = processKindOf(container);
  if (kind === undefined) return [`${at}: does not start ${ENTRYPOINT.join(' ')} gateway|node`];
  if (kind === 'standalone') return [`${at}: standalone keeps its state in memory and cannot be replicated`];
  const podName = `${w.object.metadata.name}-0`;
  const { env, set } = environmentOf(container, podName, ctx);
  const known = new Set(configVariables(kind));
  for (const name of set) {
    if (name.startsWith('MSG_') && !known.has(name)) problems.push(`${at}: sets ${name}, which a ${kind} does not read`);
  }
  let config;
  let node;
  try {
    config = loadConfig(kind, env);
    node = kind === 'node' ? loadConfig('node', env) : undefined;
  } catch (error) {
    if (error instanceof ConfigError) return [...problems, `${at}: ${error.message}`];
    throw error;
  }
  // A node serves health and metrics on its internal port, a gateway on its one port.
  const probePort = node?.internalPort ?? config.port;
  const probes: Record<ProbeKind, IProbe | undefined> = {
    readiness: container.readinessProbe,
    liveness: container.livenessProbe,
    startup: container.startupProbe,
  };
  for (const [probeKind, path] of Object.entries(PROBE_PATHS[kind]) as Array<[ProbeKind, string]>) {
    const target = probeTarget(probes[probeKind]);
    if (!target) {
      problems.push(`${at}: no ${probeKind} probe`);
      continue;
    }
    if (target.path !== path) problems.push(`${at}: ${probeKind} probe path ${String(target.path)} is not ${path}`);
  }
  for (const [probeKind, probe] of Object.entries(probes)) {
    const target = probeTarget(probe);
    if (!target) continue;
    if (!Object.values(PROBE_PATHS[kind]).includes(target.path ?? '')) problems.push(`${at}: ${probeKind} probe path ${String(target.path)} is not served`);
    if (containerPort(container, target.port) !== probePort)
      problems.push(`${at}: ${probeKind} probe port ${String(target.port)} is not the port that serves health (${String(probePort)})`);
  }
  const ports = new Map((container.ports ?? []).map((p) => [p.containerPort, p]));
  if (!ports.has(config.port)) problems.push(`${at}: MSG_PORT ${String(config.port)} is not a container port`);
  const scrapePort = w.template.metadata?.annotations?.['prometheus.io/port'];
  if (scrapePort !== undefined && Number(scrapePort) !== probePort)
    problems.push(`${at}: prometheus.io/port ${scrapePort} is not the port that serves /metrics (${String(probePort)})`);
  if (node) {
    if (!ports.has(node.internalPort)) problems.push(`${at}: MSG_INTERNAL_PORT ${String(node.internalPort)} is not a container port`);
    problems.push(...reachabilityProblems(w, node, ports.get(config.port), at, ctx));
    const covered = node.drainRatePerSecond * node.drainTimeoutSeconds;
    if (node.maxConnections > 0 && covered < node.maxConnections)
      problems.push(`${at}: drain rate × drain timeout (${String(covered)}) does not cover MSG_MAX_CONNECTIONS (${String(node.maxConnections)})`);
    if (Number(new URL(node.internalUrl).port || 80) !== node.internalPort)
      problems.push(`${at}: MSG_INTERNAL_URL does not point at MSG_INTERNAL_PORT`);
    const grace = w.template.spec?.terminationGracePeriodSeconds ?? 30;
    if (grace < node.drainTimeoutSeconds + DRAIN_MARGIN_SECONDS)
      problems.push(
        `${at}: terminationGracePeriodSeconds ${String(grace)} does not exceed MSG_DRAIN_TIMEOUT_SECONDS ${String(node.drainTimeoutSeconds)} by ${String(DRAIN_MARGIN_SECONDS)} s`,
      );
    const id = (container.env ?? []).find((v) => v.name === 'MSG_NODE_ID');
    if (id?.valueFrom?.fieldRef?.fieldPath !== 'metadata.name') problems.push(`${at}: MSG_NODE_ID does not come from the pod name`);
  }
  return problems;
}

/**
 * How clients reach a node: at `/n/<pod name>/ws` on the proxy's origin (the proxy's shared routes, per-pod DNS of
 * a headless Service that keeps draining pods resolvable), or directly on a hostPort, one pod per host.
 */
function reachabilityProblems(w: Workload, node: Readonly<NodeConfig>, publicPort: IContainerPort | undefined, at: string, ctx: Context): string[] {
  const url = new URL(node.publicUrl);
  if (url.pathname === `/n/${node.nodeId}/ws`) {
    const problems = publicPort?.hostPort === undefined ? [] : [`${at}: advertises a path on the proxy but takes a hostPort`];
    return [...problems, ...proxyRouteProblems(w, publicPort, at, ctx)];
  }
  const advertised = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  if (publicPort?.hostPort === undefined || advertised !== publicPort.hostPort)
    return [`${at}: MSG_PUBLIC_URL ${node.publicUrl} is neither the node's path on the proxy nor its hostPort`];
  const terms = w.template.spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
  if (!terms.some((t) => t.topologyKey === 'kubernetes.io/hostname' && selects(t.labelSelector, w.template.metadata?.labels)))
    return [`${at}: a hostPort without required host anti-affinity lets two node pods collide on one host`];
  return [];
}

function proxyRouteProblems(w: Workload, publicPort: IContainerPort | undefined, at: string, ctx: Context): string[] {
  const config = ctx.objects.find((o) => o.kind === 'ConfigMap' && /^msg-proxy(-[a-z0-9]+)?$/.test(o.metadata.name));
  if (!config) return [`${at}: advertises a path on the proxy, but the render has no proxy configuration`];
  const data = (config['data'] ?? {}) as Record<string, string>;
  const problems: string[] = [];
  if (data['routes.conf'] !== readFileSync(SHARED_ROUTES, 'utf8')) problems.push(`${label(config)}: routes.conf is not ${path.relative(ROOT, SHARED_ROUTES)}`);
  const serviceName = String((w.object['spec'] as { serviceName?: string }).serviceName);
  const route = /"~\^\(([\w-]+)-\[0-9\]\{1,5\}\)\$"\s+"\$1\.([\w-]+)\.\$\{POD_NAMESPACE\}\.svc\.\$\{CLUSTER_DOMAIN\}:(\d+)"/.exec(data['upstreams.conf.template'] ?? '');
  if (!route || route[1] !== w.object.metadata.name || route[2] !== serviceName || Number(route[3]) !== publicPort?.containerPort)
    problems.push(`${label(config)}: upstreams.conf.template does not map ${w.object.metadata.name}-N to ${serviceName}:${String(publicPort?.containerPort)}`);
  const service = ctx.byKindName.get(`Service/${serviceName}`);
  if ((service?.['spec'] as { publishNotReadyAddresses?: boolean } | undefined)?.publishNotReadyAddresses !== true)
    problems.push(`${at}: Service ${serviceName} must publish not-ready addresses, or a draining pod stops being routable`);
  return problems;
}

function serviceProblems(ctx: Context): string[] {
  const problems: string[] = [];
  for (const service of ctx.objects.filter((o) => o.kind === 'Service')) {
    const spec = service['spec'] as { selector?: Record<string, string>; ports?: Array<{ name?: string; port: number; targetPort?: number | string }> };
    const pods = ctx.workloads.filter((w) => selects(asSelector(spec.selector), w.template.metadata?.labels));
    if (pods.length === 0) {
      problems.push(`${label(service)}: selector matches no pods`);
      continue;
    }
    for (const port of spec.ports ?? []) {
      const target = port.targetPort ?? port.port;
      const served = pods.every((w) => (w.template.spec?.containers ?? []).some((c) => containerPort(c, target) !== undefined));
      if (!served) problems.push(`${label(service)}: targetPort ${String(target)} is not a port of the selected pods`);
    }
  }
  for (const ingress of ctx.objects.filter((o) => o.kind === 'Ingress')) {
    const spec = ingress['spec'] as { rules?: Array<{ http?: { paths: Array<{ backend: { service?: { name: string; port?: { name?: string; number?: number } } } }> } }> };
    for (const rule of spec.rules ?? []) {
      for (const { backend } of rule.http?.paths ?? []) {
        if (!backend.service) continue;
        const service = ctx.byKindName.get(`Service/${backend.service.name}`);
        const ports = ((service?.['spec'] as { ports?: Array<{ name?: string; port: number }> } | undefined)?.ports ?? []);
        const wanted = backend.service.port;
        if (!service) problems.push(`${label(ingress)}: backend Service ${backend.service.name} is not in the render`);
        else if (!ports.some((p) => (wanted?.name !== undefined ? p.name === wanted.name : p.port === wanted?.number)))
          problems.push(`${label(ingress)}: Service ${backend.service.name} has no port ${JSON.stringify(wanted)}`);
      }
    }
  }
  return problems;
}

function scalingProblems(ctx: Context): string[] {
  const problems: string[] = [];
  for (const hpa of ctx.objects.filter((o) => o.kind === 'HorizontalPodAutoscaler')) {
    const spec = hpa['spec'] as {
      scaleTargetRef: { kind: string; name: string };
      minReplicas?: number;
      maxReplicas: number;
      metrics?: Array<{ type: string; resource?: { name: string; target: { type: string } } }>;
    };
    const target = ctx.workloads.find((w) => w.object.kind === spec.scaleTargetRef.kind && w.object.metadata.name === spec.scaleTargetRef.name);
    if (!target) {
      problems.push(`${label(hpa)}: scale target ${spec.scaleTargetRef.kind}/${spec.scaleTargetRef.name} is not in the render`);
      continue;
    }
    if ((spec.minReplicas ?? 1) > spec.maxReplicas) problems.push(`${label(hpa)}: minReplicas is above maxReplicas`);
    // Every `kubectl apply` would reset the count the HPA chose.
    if ((target.object['spec'] as { replicas?: number }).replicas !== undefined)
      problems.push(`${label(target.object)}: sets replicas, which its HPA owns`);
    for (const metric of spec.metrics ?? []) {
      if (metric.type !== 'Resource' || metric.resource?.target.type !== 'Utilization') continue;
      const resource = metric.resource.name;
      const unrequested = (target.template.spec?.containers ?? []).filter((c) => c.resources?.requests?.[resource] === undefined);
      if (unrequested.length > 0) problems.push(`${label(hpa)}: ${resource} utilization needs ${resource} requests on every container`);
    }
  }
  for (const pdb of ctx.objects.filter((o) => o.kind === 'PodDisruptionBudget')) {
    const selector = (pdb['spec'] as { selector?: LabelSelector }).selector;
    const matched = ctx.workloads.filter((w) => selects(selector, w.template.metadata?.labels));
    if (matched.length !== 1) problems.push(`${label(pdb)}: selector matches ${String(matched.length)} workloads, not exactly one`);
  }
  return problems;
}

interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: unknown;
}

/**
 * The node's internal port carries node-to-node relay and the replace call: only node and gateway pods of this
 * namespace, and the documented Prometheus, may reach it. The public port must stay open to clients.
 */
function networkPolicyProblems(ctx: Context): string[] {
  const problems: string[] = [];
  const containersOf = (kind: ProcessKind): Array<{ w: Workload; c: IContainer }> =>
    ctx.workloads.flatMap((w) => (w.template.spec?.containers ?? []).filter((c) => processKindOf(c) === kind).map((c) => ({ w, c })));
  const nodes = containersOf('node');
  const gateways = containersOf('gateway');
  const allowedPeers = [...nodes, ...gateways].map(({ w }) => w);
  const policies = ctx.objects.filter((o) => o.kind === 'NetworkPolicy');
  for (const { w, c } of nodes) {
    const internalPort = c.ports?.find((p) => p.name === 'internal')?.containerPort;
    if (internalPort === undefined) {
      problems.push(`${label(w.object)}: the node container has no port named internal`);
      continue;
    }
    const covering = policies.filter((p) => selects((p['spec'] as { podSelector?: LabelSelector }).podSelector, w.template.metadata?.labels));
    if (covering.length === 0) {
      problems.push(`${label(w.object)}: no NetworkPolicy selects the node pods`);
      continue;
    }
    const reaching = new Set<Workload>();
    for (const policy of covering) {
      const spec = policy['spec'] as {
        policyTypes?: string[];
        ingress?: Array<{ from?: PolicyPeer[]; ports?: Array<{ port?: number | string }> }>;
      };
      if (!(spec.policyTypes ?? ['Ingress']).includes('Ingress')) continue;
      for (const rule of spec.ingress ?? []) {
        const ports = rule.ports?.map((p) => containerPort(c, p.port)) ?? [];
        const coversAll = (rule.ports ?? []).length === 0 || (rule.ports ?? []).some((p) => p.port === undefined);
        const toInternal = coversAll || ports.includes(internalPort);
        if (!rule.from || rule.from.length === 0) {
          if (toInternal) problems.push(`${label(policy)}: lets anyone reach the node internal port`);
          continue;
        }
        if (!toInternal) continue;
        for (const peer of rule.from) {
          if (isScraper(peer)) continue;
          if (peer.ipBlock || peer.namespaceSelector || !peer.podSelector) {
            problems.push(`${label(policy)}: lets ${JSON.stringify(peer)} reach the node internal port`);
            continue;
          }
          const matched = ctx.workloads.filter((x) => selects(peer.podSelector, x.template.metadata?.labels));
          const stray = matched.filter((x) => !allowedPeers.includes(x));
          if (Object.keys(peer.podSelector).length === 0 || stray.length > 0)
            problems.push(`${label(policy)}: lets pods other than nodes and gateways reach the node internal port`);
          for (const x of matched) reaching.add(x);
        }
      }
    }
    for (const needed of allowedPeers) {
      if (!reaching.has(needed)) problems.push(`${label(w.object)}: ${label(needed.object)} cannot reach the node internal port`);
    }
  }
  return [...problems, ...entryProblems(ctx, containersOf)];
}

/** Which workloads' pods may open connections to `port` of the pods with `labels` (the scraper aside). */
function reachOf(ctx: Context, labels: Record<string, string> | undefined, c: IContainer, port: number | undefined) {
  const policies = ctx.objects.filter((o) => o.kind === 'NetworkPolicy' && selects((o['spec'] as { podSelector?: LabelSelector }).podSelector, labels));
  const reach = { covered: policies.length > 0, openToAll: false, workloads: new Set<Workload>(), others: [] as string[] };
  for (const policy of policies) {
    const spec = policy['spec'] as { ingress?: Array<{ from?: PolicyPeer[]; ports?: Array<{ port?: number | string }> }> };
    for (const rule of spec.ingress ?? []) {
      const all = (rule.ports ?? []).length === 0 || (rule.ports ?? []).some((p) => p.port === undefined);
      if (!all && !(rule.ports ?? []).some((p) => containerPort(c, p.port) === port)) continue;
      if (!rule.from || rule.from.length === 0) reach.openToAll = true;
      for (const peer of rule.from ?? []) {
        if (isScraper(peer)) continue;
        if (peer.ipBlock || peer.namespaceSelector || !peer.podSelector || Object.keys(peer.podSelector).length === 0) reach.others.push(JSON.stringify(peer));
        else for (const x of ctx.workloads.filter((w) => selects(peer.podSelector, w.template.metadata?.labels))) reach.workloads.add(x);
      }
    }
  }
  return reach;
}

/**
 * Browsers enter through the proxy only: the nodes' public port and the gateways' port take connections from the
 * proxy pods (and Prometheus), never from everyone, except a node on a hostPort (hostport overlay), which clients
 * reach directly.
 */
function entryProblems(ctx: Context, containersOf: (kind: ProcessKind) => Array<{ w: Workload; c: IContainer }>): string[] {
  const problems: string[] = [];
  const proxies = ctx.workloads.filter((w) => w.template.metadata?.labels?.['app.kubernetes.io/component'] === 'proxy');
  const entries = [
    ...containersOf('node').map(({ w, c }) => ({ w, c, port: c.ports?.find((p) => p.name === 'public'), what: 'node public port' })),
    ...containersOf('gateway').map(({ w, c }) => ({ w, c, port: c.ports?.find((p) => p.name === 'http'), what: 'gateway port' })),
  ];
  for (const { w, c, port, what } of entries) {
    const reach = reachOf(ctx, w.template.metadata?.labels, c, port?.containerPort);
    const direct = port?.hostPort !== undefined;
    if (!reach.covered) problems.push(`${label(w.object)}: no NetworkPolicy selects its pods, so anyone reaches the ${what}`);
    else if (direct && !reach.openToAll) problems.push(`${label(w.object)}: clients cannot reach the ${what} (a hostPort)`);
    else if (!direct && reach.openToAll) problems.push(`${label(w.object)}: anyone reaches the ${what}, not only the proxy`);
    if (!direct) {
      if (proxies.length === 0 || proxies.some((x) => !reach.workloads.has(x))) problems.push(`${label(w.object)}: the proxy cannot reach the ${what}`);
      const stray = [...reach.workloads].filter((x) => !proxies.includes(x)).map((x) => label(x.object));
      if (stray.length > 0 || reach.others.length > 0) problems.push(`${label(w.object)}: ${[...stray, ...reach.others].join(', ')} reach the ${what}, not only the proxy`);
    }
  }
  return problems;
}

function isScraper(peer: PolicyPeer): boolean {
  const namespaces = peer.namespaceSelector;
  return (
    peer.ipBlock === undefined &&
    namespaces?.matchExpressions === undefined &&
    JSON.stringify(namespaces?.matchLabels) === JSON.stringify({ 'kubernetes.io/metadata.name': SCRAPER.namespace }) &&
    peer.podSelector?.matchExpressions === undefined &&
    JSON.stringify(peer.podSelector?.matchLabels) === JSON.stringify(SCRAPER.labels)
  );
}

interface Checker {
  check(objects: K8sObject[], options: { selfContained: boolean }): string[];
}

async function createChecker(renders: K8sObject[][]): Promise<Checker> {
  const kinds = new Set(renders.flat().map(keyOf));
  const models = await loadModels(kinds);
  const unknownFields = createFieldWalker(kinds);
  return {
    check(objects, { selfContained }) {
      const problems: string[] = [];
      for (const o of objects) problems.push(...schemaProblems(o, models), ...unknownFields(o));
      const ctx: Context = {
        objects,
        byKindName: new Map(objects.map((o) => [label(o), o])),
        workloads: workloadsOf(objects),
        selfContained,
      };
      for (const w of ctx.workloads) problems.push(...podProblems(w, ctx));
      problems.push(...serviceProblems(ctx), ...scalingProblems(ctx), ...networkPolicyProblems(ctx));
      return problems;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------

// The manifests start the image's entrypoint; the image must run it with every workspace it needs at run time.
describe('Dockerfile', function () {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const readJson = (file: string): { workspaces?: string[]; bin?: Record<string, string>; dependencies?: Record<string, string> } =>
    JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')) as never;
  const runtime = dockerfile.slice(dockerfile.search(/^FROM .* AS runtime$/m));
  const production = dockerfile.slice(dockerfile.search(/^FROM .* AS production$/m), dockerfile.search(/^FROM .* AS runtime$/m));

  it('pins its base image by digest and puts msgctl and messaging-server on the PATH', function () {
    expect(dockerfile).to.match(/^ARG NODE_IMAGE=node:[\w.-]+@sha256:[0-9a-f]{64}$/m);
    // The runtime's base is the pinned image too unless a build passes one without npm (make image does).
    expect(dockerfile).to.match(/^ARG RUNTIME_IMAGE=\$\{NODE_IMAGE\}$/m);
    const froms = dockerfile.split('\n').filter((l) => l.startsWith('FROM '));
    expect(froms).to.deep.equal(['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE} AS production', 'FROM ${RUNTIME_IMAGE} AS runtime']);
    const bins = readJson('packages/cli/package.json').bin ?? {};
    expect(Object.keys(bins)).to.have.members(['messaging-server', 'msgctl']);
    expect(production).to.match(/for bin in messaging-server msgctl; do/);
    expect(production).to.contain('exec node /app/packages/cli/dist/bin/%s.js');
    expect(production).to.contain('> "bin/$bin"');
    expect(runtime).to.match(/^ENV PATH=\/app\/bin:/m);
    expect(runtime).to.match(/^COPY --from=production \/app \/app$/m);
  });

  it('starts the CLI that the manifests expect, as the unprivileged node user', async function () {
    expect(runtime).to.match(/^USER node$/m);
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(runtime)?.[1];
    expect(JSON.parse(entrypoint ?? 'null')).to.deep.equal(ENTRYPOINT);
    // The package's bin is a committed wrapper (npm links a bin only if it exists at install time) for the build's
    // entry file, which the image runs directly.
    const bin = readJson('packages/cli/package.json').bin?.['messaging-server'] ?? '';
    expect(readFileSync(path.join(ROOT, 'packages/cli', bin), 'utf8')).to.contain("runBuilt('messaging-server')");
    const { builtEntry } = (await import(pathToFileURL(path.join(ROOT, 'packages/cli/bin/run-built.js')).href)) as {
      builtEntry: (name: string) => string;
    };
    expect(path.relative(ROOT, builtEntry('messaging-server'))).to.equal(ENTRYPOINT[1]);
  });

  it('copies every runtime workspace manifest before npm ci, and the build output of every runtime workspace', function () {
    // The harness (bench, scale, chaos) is neither built nor run in the image: like testkit, its manifest is left out.
    const workspaces = (readJson('package.json').workspaces ?? []).filter((ws) => ws !== 'packages/harness');
    const [build = '', run = ''] = dockerfile.split(/^FROM /m).slice(1);
    expect(run).to.match(/^\$\{NODE_IMAGE\} AS production$/m);
    for (const [stage, wanted] of [[build, workspaces], [run, workspaces.filter((ws) => ws !== 'packages/testkit')]] as const) {
      const ci = stage.indexOf('RUN npm ci');
      for (const ws of wanted) expect(stage.indexOf(`COPY ${ws}/package.json ${ws}/`), ws).to.be.within(0, ci);
    }
    // Test-only code stays out: no testkit manifest (so npm ci skips it and its chai, fast-check), no dev deps.
    expect(production + runtime).to.not.include('packages/testkit');
    expect(production).to.match(/^RUN npm ci --omit=dev /m);
    // The CLI's workspace dependencies, transitively, plus the client (its browser bundle is the demo page).
    const needed = new Set(['packages/cli', 'packages/client']);
    for (const ws of needed) {
      for (const dep of Object.keys(readJson(`${ws}/package.json`).dependencies ?? {}))
        if (dep.startsWith('@messaging-server/')) needed.add(`packages/${dep.slice('@messaging-server/'.length)}`);
    }
    for (const ws of needed) expect(production, ws).to.include(`COPY --from=build /app/${ws}/dist ${ws}/dist`);
  });
});

describe('Kubernetes manifests (k8s/)', function () {
  this.timeout(60_000);
  const dirs = kustomizations();
  const renders = new Map<string, K8sObject[]>();
  let checker: Checker;

  before(async function () {
    for (const dir of dirs) renders.set(dir, needsInputs(dir) ? renderWithInputs(dir) : render(dir));
    checker = await createChecker([...renders.values()]);
  });

  it('has a base, a local, a production and a hostport overlay', function () {
    const names = dirs.map((d) => path.relative(K8S, d));
    expect(names).to.include.members(['base', ...['local', 'production', 'hostport'].map((o) => path.join('overlays', o))]);
  });

  for (const dir of dirs) {
    const name = path.relative(K8S, dir);
    it(`${name}: renders valid objects with consistent references`, function () {
      const objects = renders.get(dir) ?? [];
      expect(objects.length).to.be.greaterThan(10);
      // Overlays that ship their own cluster secret must be deployable as rendered.
      const selfContained = objects.some((o) => o.kind === 'Secret' && o.metadata.name.startsWith('msg-cluster-secret'));
      expect(checker.check(objects, { selfContained })).to.deep.equal([]);
    });
  }

  it('runs etcd, memcached, gateways and nodes with autoscaling and disruption budgets', function () {
    const objects = renders.get(path.join(K8S, 'base')) ?? [];
    const names = new Set(objects.map(label));
    for (const expected of [
      'StatefulSet/etcd',
      'Deployment/memcached',
      'Deployment/msg-gateway',
      'Service/msg-gateway',
      'HorizontalPodAutoscaler/msg-gateway',
      'Deployment/msg-proxy',
      'Service/msg-proxy',
      'HorizontalPodAutoscaler/msg-proxy',
      'PodDisruptionBudget/msg-proxy',
      'NetworkPolicy/msg-gateway',
      'PodDisruptionBudget/msg-gateway',
      'StatefulSet/msg-node',
      'HorizontalPodAutoscaler/msg-node',
      'PodDisruptionBudget/msg-node',
      'NetworkPolicy/msg-node',
    ])
      expect(names, expected).to.include(expected);
    const etcd = objects.find((o) => label(o) === 'StatefulSet/etcd');
    expect((etcd?.['spec'] as { replicas?: number }).replicas).to.equal(3);
  });

  describe('the checker catches broken manifests', function () {
    const local = (): K8sObject[] => structuredClone(renders.get(path.join(K8S, 'overlays', 'local')) ?? []);
    const find = (objects: K8sObject[], name: string): K8sObject => {
      const found = objects.find((o) => label(o) === name);
      if (!found) throw new Error(`${name} is not in the local overlay`);
      return found;
    };
    const podOf = (o: K8sObject) => ((o['spec'] as { template: IPodTemplateSpec }).template.spec ?? { containers: [] });
    const containerOf = (o: K8sObject): IContainer => {
      const container = podOf(o).containers[0];
      if (!container) throw new Error(`${label(o)} has no container`);
      return container;
    };
    const problemsAfter = (mutate: (objects: K8sObject[]) => void): string[] => {
      const objects = local();
      mutate(objects);
      return checker.check(objects, { selfContained: true });
    };

    it('starts from a clean render', function () {
      expect(problemsAfter(() => {})).to.deep.equal([]);
    });

    it('reports a schema violation', function () {
      const problems = problemsAfter((o) => {
        (find(o, 'StatefulSet/msg-node')['spec'] as Record<string, unknown>)['replicas'] = 'two';
      });
      expect(problems.join('\n')).to.match(/StatefulSet\/msg-node: .*replicas.* must be integer/);
    });

    it('reports a replica count on a workload that an HPA scales', function () {
      const problems = problemsAfter((o) => {
        (find(o, 'Deployment/msg-gateway')['spec'] as Record<string, unknown>)['replicas'] = 2;
      });
      expect(problems).to.include('Deployment/msg-gateway: sets replicas, which its HPA owns');
    });

    it('reports an unknown field, which the schema accepts', function () {
      const problems = problemsAfter((o) => {
        Object.assign(containerOf(find(o, 'StatefulSet/msg-node')), { imagePullPolice: 'Always' });
        Object.assign(find(o, 'Deployment/msg-gateway')['spec'] as object, { replica: 3 });
      });
      expect(problems).to.include.members([
        'StatefulSet/msg-node: unknown field spec.template.spec.containers[0].imagePullPolice',
        'Deployment/msg-gateway: unknown field spec.replica',
      ]);
    });

    it('reports a container without an image', function () {
      const problems = problemsAfter((o) => {
        delete containerOf(find(o, 'Deployment/memcached')).image;
      });
      expect(problems).to.include('Deployment/memcached container memcached: no image');
    });

    it('reports an env variable the config schema does not know, or one the process kind does not read', function () {
      const problems = problemsAfter((o) => {
        containerOf(find(o, 'StatefulSet/msg-node')).env?.push({ name: 'MSG_DRAIN_TIMEOUT', value: '25' });
        containerOf(find(o, 'Deployment/msg-gateway')).env?.push({ name: 'MSG_PENDING_MAX', value: '5' });
      });
      expect(problems).to.include.members([
        'StatefulSet/msg-node container node: sets MSG_DRAIN_TIMEOUT, which a node does not read',
        'Deployment/msg-gateway container gateway: sets MSG_PENDING_MAX, which a gateway does not read',
      ]);
    });

    it('reports a value the config schema rejects', function () {
      const problems = problemsAfter((o) => {
        containerOf(find(o, 'Deployment/msg-gateway')).env?.push({ name: 'MSG_SESSION_CONFLICT', value: 'sometimes' });
      });
      expect(problems.join('\n')).to.match(/msg-gateway container gateway: invalid configuration: MSG_SESSION_CONFLICT/);
    });

    it('reports probes on paths or ports the process does not serve', function () {
      const problems = problemsAfter((o) => {
        const node = containerOf(find(o, 'StatefulSet/msg-node'));
        if (node.readinessProbe?.httpGet) node.readinessProbe.httpGet.port = 'public';
        if (node.livenessProbe?.httpGet) node.livenessProbe.httpGet.path = '/readyz';
        const gateway = containerOf(find(o, 'Deployment/msg-gateway'));
        if (gateway.readinessProbe?.httpGet) gateway.readinessProbe.httpGet.port = 'metrics';
      });
      expect(problems).to.include.members([
        'StatefulSet/msg-node container node: readiness probe port public is not the port that serves health (9081)',
        'StatefulSet/msg-node container node: liveness probe path /readyz is not /healthz',
        'Deployment/msg-gateway container gateway: readiness probe port metrics is not a container port',
      ]);
    });

    it('reports a grace period that does not cover the drain timeout', function () {
      const problems = problemsAfter((o) => {
        podOf(find(o, 'StatefulSet/msg-node')).terminationGracePeriodSeconds = 30;
      });
      expect(problems).to.include(
        'StatefulSet/msg-node container node: terminationGracePeriodSeconds 30 does not exceed MSG_DRAIN_TIMEOUT_SECONDS 25 by 10 s',
      );
    });

    it('reports a node id that is not the pod name', function () {
      const problems = problemsAfter((o) => {
        const env = containerOf(find(o, 'StatefulSet/msg-node')).env ?? [];
        const index = env.findIndex((v) => v.name === 'MSG_NODE_ID');
        env[index] = { name: 'MSG_NODE_ID', value: 'node-a' };
      });
      expect(problems).to.include('StatefulSet/msg-node container node: MSG_NODE_ID does not come from the pod name');
    });

    it('reports dangling references: HPA target, PDB and Service selectors, Secrets', function () {
      const problems = problemsAfter((o) => {
        ((find(o, 'HorizontalPodAutoscaler/msg-node')['spec'] as { scaleTargetRef: { name: string } }).scaleTargetRef).name = 'msg-nodes';
        (find(o, 'PodDisruptionBudget/msg-gateway')['spec'] as { selector: LabelSelector }).selector = { matchLabels: { app: 'gateway' } };
        (find(o, 'Service/msg-gateway')['spec'] as { selector: Record<string, string> }).selector = { app: 'gateway' };
        const secret = o.find((x) => x.kind === 'Secret');
        if (secret) secret.metadata.name = 'renamed';
      });
      expect(problems).to.include.members([
        'HorizontalPodAutoscaler/msg-node: scale target StatefulSet/msg-nodes is not in the render',
        'PodDisruptionBudget/msg-gateway: selector matches 0 workloads, not exactly one',
        'Service/msg-gateway: selector matches no pods',
      ]);
      expect(problems.join('\n')).to.match(/msg-node container node: MSG_CLUSTER_SECRET refers to Secret msg-cluster-secret-\w+, which is not in the render/);
    });

    it('reports a NetworkPolicy that opens the node internal port beyond nodes and gateways', function () {
      const problems = problemsAfter((o) => {
        const spec = find(o, 'NetworkPolicy/msg-node')['spec'] as { ingress: unknown[] };
        spec.ingress.push({ from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'memcached' } } }], ports: [{ port: 9081 }] });
        spec.ingress.push({ ports: [{ port: 'internal' }] });
      });
      expect(problems).to.include.members([
        'NetworkPolicy/msg-node: lets pods other than nodes and gateways reach the node internal port',
        'NetworkPolicy/msg-node: lets anyone reach the node internal port',
      ]);
    });

    it('reports a NetworkPolicy that shuts the gateways out of the node internal port', function () {
      const problems = problemsAfter((o) => {
        const spec = find(o, 'NetworkPolicy/msg-node')['spec'] as { ingress: Array<{ from?: PolicyPeer[] }> };
        for (const rule of spec.ingress) if (rule.from) rule.from = rule.from.filter((p) => p.podSelector?.matchLabels?.['app.kubernetes.io/component'] !== 'gateway');
      });
      expect(problems).to.include('StatefulSet/msg-node: Deployment/msg-gateway cannot reach the node internal port');
    });

    it('reports a drain that cannot close a full node before its timeout', function () {
      const problems = problemsAfter((o) => {
        containerOf(find(o, 'StatefulSet/msg-node')).env?.push({ name: 'MSG_DRAIN_RATE_PER_SECOND', value: '100' });
      });
      expect(problems).to.include('StatefulSet/msg-node container node: drain rate × drain timeout (2500) does not cover MSG_MAX_CONNECTIONS (20000)');
    });

    it('reports routes that are not the shared file, and a headless Service that hides draining pods', function () {
      const problems = problemsAfter((o) => {
        const config = o.find((x) => x.kind === 'ConfigMap' && x.metadata.name.startsWith('msg-proxy-'));
        (config?.['data'] as Record<string, string>)['routes.conf'] += '\n# edited in place\n';
        delete (find(o, 'Service/msg-node')['spec'] as Record<string, unknown>)['publishNotReadyAddresses'];
      });
      expect(problems.join('\n')).to.match(/ConfigMap\/msg-proxy-\w+: routes.conf is not k8s\/base\/proxy\/routes.conf/);
      expect(problems).to.include('StatefulSet/msg-node container node: Service msg-node must publish not-ready addresses, or a draining pod stops being routable');
    });

    it('reports a node on a hostPort behind the proxy, and one whose address is neither', function () {
      const problems = problemsAfter((o) => {
        const node = containerOf(find(o, 'StatefulSet/msg-node'));
        const port = node.ports?.find((p) => p.name === 'public');
        if (port) port.hostPort = 8081;
      });
      expect(problems).to.include('StatefulSet/msg-node container node: advertises a path on the proxy but takes a hostPort');
      const direct = problemsAfter((o) => {
        containerOf(find(o, 'StatefulSet/msg-node')).env?.push({ name: 'MSG_PUBLIC_URL', value: 'http://192.0.2.1:8081/ws' });
      });
      expect(direct.join('\n')).to.match(/MSG_PUBLIC_URL http:\/\/192.0.2.1:8081\/ws is neither the node's path on the proxy nor its hostPort/);
    });

    it('reports node and gateway ports open to everyone instead of only to the proxy', function () {
      const problems = problemsAfter((o) => {
        (find(o, 'NetworkPolicy/msg-node')['spec'] as { ingress: unknown[] }).ingress.push({ ports: [{ port: 'public' }] });
        (find(o, 'NetworkPolicy/msg-gateway')['spec'] as { ingress: unknown[] }).ingress = [{ ports: [{ port: 'http' }] }];
      });
      expect(problems).to.include.members([
        'StatefulSet/msg-node: anyone reaches the node public port, not only the proxy',
        'Deployment/msg-gateway: anyone reaches the gateway port, not only the proxy',
        'Deployment/msg-gateway: the proxy cannot reach the gateway port',
      ]);
    });
  });
});

/** Issue 14, acceptance 3: the production overlay as rendered for a site, and what it refuses. */
describe('production overlay: one TLS origin through the proxy, secure by default', function () {
  this.timeout(60_000);
  const dir = path.join(K8S, 'overlays', 'production');
  const examples = {
    'site.env': readFileSync(path.join(dir, 'site.env.example'), 'utf8'),
    'auth.env': readFileSync(path.join(dir, 'auth.env.example'), 'utf8'),
  };
  let objects: K8sObject[];
  let checker: Checker;
  const find = (name: string): K8sObject => {
    const found = objects.find((o) => label(o) === name || label(o).startsWith(`${name}-`));
    if (!found) throw new Error(`${name} is not in the production render`);
    return found;
  };
  const podSpec = (o: K8sObject) => (o['spec'] as { template: IPodTemplateSpec }).template.spec;
  const renderError = (inputs: Record<string, string | undefined>): string => {
    try {
      renderWithInputs(dir, inputs);
    } catch (error) {
      return String((error as { stderr?: string }).stderr ?? error);
    }
    throw new Error(`rendered without ${JSON.stringify(inputs)}`);
  };

  before(async function () {
    objects = renderWithInputs(dir);
    checker = await createChecker([objects]);
  });

  it('runs node pods without hostPort or host anti-affinity, behind the proxy on the site origin', function () {
    const node = podSpec(find('StatefulSet/msg-node'));
    for (const container of node?.containers ?? []) for (const port of container.ports ?? []) expect(port.hostPort, container.name).to.equal(undefined);
    expect(node?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution).to.equal(undefined);
    const env = node?.containers[0]?.env ?? [];
    expect(env.find((v) => v.name === 'MSG_PUBLIC_BASE_URL')?.value).to.equal('https://signaling.example.com');
    expect(env.some((v) => v.name === 'MSG_PUBLIC_URL')).to.equal(false);
    expect((find('HorizontalPodAutoscaler/msg-node')['spec'] as { maxReplicas: number }).maxReplicas).to.be.at.least(100);
    expect((find('ConfigMap/msg-config')['data'] as Record<string, string>)['MSG_PRODUCTION']).to.equal('true');
    expect(checker.check(objects, { selfContained: false })).to.deep.equal([]);
  });

  it('routes with the very file that make run-tls and the browser test include', function () {
    const shipped = (find('ConfigMap/msg-proxy')['data'] as Record<string, string>)['routes.conf'];
    expect(shipped).to.equal(readFileSync(SHARED_ROUTES, 'utf8'));
    const ca = { caCert: 'ca.crt', serverCert: 'server.crt', serverKey: 'server.key' };
    const local = localProxyConfig({ dir: '/tmp/x', listen: '127.0.0.1:8443', ca, gatewayPorts: [8080], nodes: [{ nodeId: 'node-1', port: 8081 }] });
    expect(SHARED_ROUTE_OF_LOCAL_RUN).to.equal(SHARED_ROUTES);
    expect(local['nginx.conf']).to.contain(`include ${SHARED_ROUTES};`);
    // Only upstream resolution and the listen socket are the environment's: the names routes.conf relies on.
    for (const name of ['$msg_node_upstream', '$msg_gateway_upstream']) {
      expect(local['msg/upstreams.conf']).to.contain(name.slice(1));
      expect((find('ConfigMap/msg-proxy')['data'] as Record<string, string>)['upstreams.conf.template']).to.contain(name);
    }
  });

  it('ships a proxy configuration that nginx accepts, TLS included', async function () {
    const data = find('ConfigMap/msg-proxy')['data'] as Record<string, string>;
    const root = mkdtempSync(path.join(tmpdir(), 'msg-nginx-'));
    try {
      const ca = await createLocalCa(path.join(root, 'tls'), ['signaling.example.com']);
      cpSync(ca.serverCert, path.join(root, 'tls', 'tls.crt'));
      cpSync(ca.serverKey, path.join(root, 'tls', 'tls.key'));
      // What the image's entrypoint does: envsubst of the template into conf.d/, with the pod's values.
      const sample: Record<string, string> = { POD_NAMESPACE: 'messaging-server', CLUSTER_DOMAIN: 'cluster.local', NGINX_LOCAL_RESOLVERS: '10.96.0.10' };
      // Paths into the temp dir; the container's /dev/std* are the runtime's pipes, plain files here.
      const at = (text: string): string =>
        text.replace(/\/dev\/std(out|err)/g, '\0std$1.log').replaceAll('/tmp/', '\0tmp/').replaceAll('/etc/nginx/', '\0').replaceAll('\0', `${root}/`);
      for (const dirName of ['msg', 'conf.d', 'tmp']) mkdirSync(path.join(root, dirName), { recursive: true });
      for (const [name, text] of Object.entries(data)) writeFileSync(path.join(root, 'msg', name), at(text));
      writeFileSync(path.join(root, 'nginx.conf'), at(data['nginx.conf'] ?? ''));
      const rendered = (data['upstreams.conf.template'] ?? '').replace(/\$\{(\w+)\}/g, (whole, name: string) => sample[name] ?? whole);
      expect(rendered).to.not.match(/\$\{/);
      writeFileSync(path.join(root, 'conf.d', 'upstreams.conf'), rendered);
      cpSync('/etc/nginx/mime.types', path.join(root, 'mime.types'));
      const out = execFileSync('nginx', ['-t', '-e', 'stderr', '-p', `${root}/`, '-c', path.join(root, 'nginx.conf')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out).to.equal('');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('carries the alerts as a PrometheusRule that promtool accepts, on series the processes export', function () {
    const rule = find('PrometheusRule/messaging-server');
    const groups = (rule['spec'] as { groups: Array<{ rules: Array<{ alert?: string; expr: string }> }> }).groups;
    const root = mkdtempSync(path.join(tmpdir(), 'msg-rules-'));
    try {
      const file = path.join(root, 'rules.yaml');
      writeFileSync(file, JSON.stringify({ groups }));
      const out = execFileSync('promtool', ['check', 'rules', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out).to.match(/SUCCESS: 13 rules found/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    const dashboard = readFileSync(path.join(K8S, 'components', 'monitoring', 'dashboard.json'), 'utf8');
    const exprs = [...groups.flatMap((g) => g.rules.map((r) => r.expr)), ...[...dashboard.matchAll(/"expr": "((?:[^"\\]|\\.)*)"/g)].map((m) => m[1] ?? '')];
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\bmsg_\w+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''))));
    const exported = exportedMetricNames();
    expect([...used].filter((name) => !exported.has(name))).to.deep.equal([]);
    const titles = (JSON.parse(dashboard) as { panels: Array<{ title: string }> }).panels.map((p) => p.title).join('\n');
    for (const panel of ['Connections', 'Messages per second', 'Errors by code', 'Held and pending', 'Backend latency', 'Drains'])
      expect(titles, panel).to.contain(panel);
  });

  it('does not render without the site inputs, nor without each required setting', function () {
    expect(renderError({ 'auth.env': examples['auth.env'] })).to.match(/site\.env/);
    expect(renderError({ 'site.env': examples['site.env'] })).to.match(/auth\.env/);
    for (const key of ['MSG_PUBLIC_BASE_URL', 'MSG_ALLOWED_ORIGINS', 'MSG_TRUSTED_PROXIES']) {
      const site = examples['site.env'].split('\n').filter((line) => !line.startsWith(`${key}=`)).join('\n');
      expect(renderError({ 'site.env': site, 'auth.env': examples['auth.env'] }), key).to.contain(`data.${key}`);
    }
  });

  it('refuses to start without authentication or with any origin, as rendered', function () {
    const noAuth = renderWithInputs(dir, { 'site.env': examples['site.env'], 'auth.env': '# nothing\n' });
    expect(checker.check(noAuth, { selfContained: false }).join('\n')).to.contain('MSG_AUTH_JWT_SECRET or MSG_AUTH_JWKS_URL is required in production mode');
    const anyOrigin = renderWithInputs(dir, { 'site.env': examples['site.env'].replace(/^MSG_ALLOWED_ORIGINS=.*$/m, 'MSG_ALLOWED_ORIGINS=*'), 'auth.env': examples['auth.env'] });
    const problems = checker.check(anyOrigin, { selfContained: false }).join('\n');
    expect(problems).to.match(/msg-gateway container gateway: .*MSG_ALLOWED_ORIGINS must list the origins/);
    expect(problems).to.match(/msg-node container node: .*MSG_ALLOWED_ORIGINS must list the origins/);
  });
});

/** Every `msg_*` family the code registers: literal names, and the per-backend ones of backendOperationMetrics. */
function exportedMetricNames(): Set<string> {
  const names = new Set<string>();
  for (const pkg of ['core', 'gateway', 'node']) {
    const dir = path.join(ROOT, 'packages', pkg, 'src');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
      const text = readFileSync(path.join(dir, file), 'utf8');
      for (const m of text.matchAll(/name: '(msg_\w+)'/g)) names.add(m[1] as string);
      for (const m of text.matchAll(/name: `msg_\$\{backend\}_(\w+)`/g)) for (const b of ['etcd', 'memcached']) names.add(`msg_${b}_${m[1] as string}`);
    }
  }
  return names;
}
