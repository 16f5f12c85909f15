/**
 * What a pod of the rendered k8s/ manifests would run, as `docker run` arguments: the image, command and args, user,
 * read-only root, tmpfs volumes, dropped capabilities, grace period, and the environment the kubelet would give the
 * process (envFrom ConfigMaps and Secrets, downward-API fields, `$(VAR)` references). The only changes are the
 * addresses a pod has in a cluster and a process on one host cannot: named explicitly per variable, and refused when
 * the manifests do not set that variable, so a manifest that drifts fails the image test instead of being patched.
 */
import { execFileSync } from 'node:child_process';
import { loadAll } from 'js-yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: { template?: { spec: PodSpec } };
  data?: Record<string, string>;
}

interface PodSpec {
  securityContext?: { runAsUser?: number; runAsGroup?: number };
  terminationGracePeriodSeconds?: number;
  containers: ContainerSpec[];
  volumes?: { name: string; emptyDir?: { sizeLimit?: string } }[];
}

interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string }; prefix?: string }[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string; optional?: boolean } } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  securityContext?: {
    runAsUser?: number;
    runAsGroup?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string }[];
}

export interface PodPlan {
  /** The container's image as rendered. */
  image: string;
  /** The manifest's `command` (replaces the image's entrypoint), or undefined. */
  command: string[] | undefined;
  args: string[];
  /** `uid:gid` from the pod's and container's securityContext. */
  user: string;
  uid: number;
  gid: number;
  readOnlyRoot: boolean;
  noNewPrivileges: boolean;
  dropCapabilities: string[];
  /** emptyDir mounts, as tmpfs of their size limit. */
  tmpfs: { path: string; sizeLimit: string | undefined }[];
  graceSeconds: number;
  /** The process environment: manifests, then `replace`, then `add`. */
  env: Record<string, string>;
  /** The readiness probe's path and (after `ports`) port. */
  readiness: { path: string; port: number } | undefined;
}

export interface PodSite {
  podName: string;
  podIp: string;
  /** New values for variables the manifests set (a missing one throws). */
  replace: Record<string, string>;
  /** Variables the manifests do not set that the host needs (one the manifests set throws). */
  add: Record<string, string>;
  /** The host port for each containerPort. */
  ports: Record<number, number>;
}

export function renderKustomization(dir: string): K8sObject[] {
  const yaml = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return loadAll(yaml).filter((doc): doc is K8sObject => doc !== null && typeof doc === 'object');
}

export function podPlan(objects: readonly K8sObject[], workload: string, containerName: string, site: PodSite): PodPlan {
  const [kind, name] = workload.split('/');
  const owner = objects.find((o) => o.kind === kind && o.metadata.name === name);
  const pod = owner?.spec?.template?.spec;
  if (!pod) throw new Error(`the render has no ${workload} with a pod template`);
  const container = pod.containers.find((c) => c.name === containerName);
  if (!container) throw new Error(`${workload} has no container ${containerName}`);
  const uid = container.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
  const gid = container.securityContext?.runAsGroup ?? pod.securityContext?.runAsGroup;
  if (uid === undefined || gid === undefined) throw new Error(`${workload}: no runAsUser/runAsGroup`);
  const env = environment(objects, container, site);
  const probe = container.readinessProbe?.httpGet;
  return {
    image: container.image,
    command: container.command,
    args: container.args ?? [],
    user: `${String(uid)}:${String(gid)}`,
    uid,
    gid,
    readOnlyRoot: container.securityContext?.readOnlyRootFilesystem === true,
    noNewPrivileges: container.securityContext?.allowPrivilegeEscalation === false,
    dropCapabilities: container.securityContext?.capabilities?.drop ?? [],
    tmpfs: (container.volumeMounts ?? []).map((mount) => {
      const volume = (pod.volumes ?? []).find((v) => v.name === mount.name);
      if (!volume?.emptyDir) throw new Error(`${workload}: volume ${mount.name} is not an emptyDir`);
      return { path: mount.mountPath, sizeLimit: volume.emptyDir.sizeLimit };
    }),
    graceSeconds: pod.terminationGracePeriodSeconds ?? 30,
    env,
    readiness: probe && { path: probe.path, port: hostPort(container, probe.port, site) },
  };
}

function hostPort(container: ContainerSpec, port: string | number, site: PodSite): number {
  const number = typeof port === 'number' ? port : container.ports?.find((p) => p.name === port)?.containerPort;
  const mapped = number === undefined ? undefined : site.ports[number];
  if (mapped === undefined) throw new Error(`no host port for container port ${String(port)}`);
  return mapped;
}

function environment(objects: readonly K8sObject[], container: ContainerSpec, site: PodSite): Record<string, string> {
  const byName = (kind: string, name: string): K8sObject => {
    const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
    if (!found) throw new Error(`the render has no ${kind} ${name}`);
    return found;
  };
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    const [object, decode] = source.configMapRef
      ? [byName('ConfigMap', source.configMapRef.name), false]
      : source.secretRef
        ? [byName('Secret', source.secretRef.name), true]
        : [undefined, false];
    for (const [key, value] of Object.entries(object?.data ?? {}))
      env[`${source.prefix ?? ''}${key}`] = decode ? Buffer.from(value, 'base64').toString('utf8') : value;
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom;
    if (from?.fieldRef) env[variable.name] = fieldValue(from.fieldRef.fieldPath, site);
    else if (from?.secretKeyRef) {
      const data = byName('Secret', from.secretKeyRef.name).data?.[from.secretKeyRef.key];
      // The kubelet leaves an optional key that the Secret lacks unset.
      if (data === undefined && from.secretKeyRef.optional === true) continue;
      if (data === undefined) throw new Error(`Secret ${from.secretKeyRef.name} has no key ${from.secretKeyRef.key}`);
      env[variable.name] = Buffer.from(data, 'base64').toString('utf8');
    } else if (from) throw new Error(`${variable.name}: a valueFrom this plan does not know`);
    // The kubelet expands $(NAME) from the variables defined before; an unknown reference stays as written.
    else env[variable.name] = (variable.value ?? '').replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref, ref1: string) => env[ref1] ?? ref);
  }
  for (const [key, value] of Object.entries(site.replace)) {
    if (!(key in env)) throw new Error(`the manifests no longer set ${key}, which the host plan replaces`);
    env[key] = value;
  }
  for (const [key, value] of Object.entries(site.add)) {
    if (key in env) throw new Error(`the manifests now set ${key} (${env[key] ?? ''}), which the host plan adds`);
    env[key] = value;
  }
  return env;
}

function fieldValue(path: string, site: PodSite): string {
  if (path === 'metadata.name') return site.podName;
  if (path === 'status.podIP') return site.podIp;
  throw new Error(`a fieldRef this plan does not know: ${path}`);
}

/** `docker run` options for a plan (without the image and args), on the host network. */
export function dockerRunOptions(plan: PodPlan, name: string): string[] {
  const options = ['--name', name, '--network', 'host', '--user', plan.user, '--stop-timeout', String(plan.graceSeconds)];
  if (plan.readOnlyRoot) options.push('--read-only');
  if (plan.noNewPrivileges) options.push('--security-opt', 'no-new-privileges');
  for (const cap of plan.dropCapabilities) options.push('--cap-drop', cap);
  for (const mount of plan.tmpfs) options.push('--tmpfs', `${mount.path}${mount.sizeLimit ? `:size=${sizeOf(mount.sizeLimit)}` : ''}`);
  for (const [key, value] of Object.entries(plan.env)) options.push('--env', `${key}=${value}`);
  if (plan.command) options.push('--entrypoint', plan.command[0] as string);
  return options;
}

/** The arguments after the image: the rest of a manifest command, then its args. */
export function dockerRunArgs(plan: PodPlan): string[] {
  return [...(plan.command?.slice(1) ?? []), ...plan.args];
}

function sizeOf(quantity: string): string {
  const match = /^(\d+)(Ki|Mi|Gi)?$/.exec(quantity);
  if (!match) throw new Error(`a size this plan does not know: ${quantity}`);
  return `${match[1] ?? ''}${{ Ki: 'k', Mi: 'm', Gi: 'g' }[match[2] as 'Ki'] ?? ''}`;
}
