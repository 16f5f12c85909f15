/**
 * Containers of the built image started from pod plans (k8s-pod.ts) on our own daemon, and what the kernel says
 * about their sockets: the image test's view of a pod.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { waitFor } from '@messaging-server/testkit';
import type { DockerDaemon } from '../../scripts/image/docker-daemon.js';
import { dockerRunArgs, dockerRunOptions, type PodPlan } from './k8s-pod.js';

export interface Container {
  readonly name: string;
  readonly plan: PodPlan;
}

export interface ContainerState {
  Status: string;
  Running: boolean;
  ExitCode: number;
  Pid: number;
  StartedAt: string;
  FinishedAt: string;
}

export interface ContainerInspect {
  Path: string;
  Args: string[];
  State: ContainerState;
  Config: { User: string; Env: string[]; Image: string };
  HostConfig: { NetworkMode: string; ReadonlyRootfs: boolean; CapDrop: string[] | null; SecurityOpt: string[] | null };
}

export async function runContainer(daemon: DockerDaemon, image: string, name: string, plan: PodPlan): Promise<Container> {
  await daemon.docker(['run', '--detach', ...dockerRunOptions(plan, name), image, ...dockerRunArgs(plan)], { timeoutMs: 300_000 });
  return { name, plan };
}

export async function inspect(daemon: DockerDaemon, name: string): Promise<ContainerInspect> {
  const [first] = JSON.parse(await daemon.docker(['container', 'inspect', name])) as ContainerInspect[];
  if (!first) throw new Error(`no container ${name}`);
  return first;
}

/** Waits for the plan's readiness probe to answer 200, failing at once if the container exits. */
export async function waitReady(daemon: DockerDaemon, container: Container, timeoutMs: number): Promise<void> {
  const probe = container.plan.readiness;
  if (!probe) throw new Error(`${container.name}: the manifests give no readiness probe`);
  await waitFor(
    async () => {
      const state = (await inspect(daemon, container.name)).State;
      if (!state.Running) throw new Error(`${container.name} exited (${String(state.ExitCode)}): ${await logs(daemon, container.name)}`);
      const response = await fetch(`http://127.0.0.1:${String(probe.port)}${probe.path}`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
      return response?.status === 200;
    },
    { timeoutMs, intervalMs: 250, what: `${container.name} ready (${probe.path})` },
  );
}

export async function logs(daemon: DockerDaemon, name: string, tail = 40): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile('docker', ['logs', '--tail', String(tail), name], { env: daemon.env }, (_error, stdout, stderr) => resolve(`${stdout}${stderr}`));
  });
}

/** The environment of the container's main process, as the kernel has it. */
export async function processEnvironment(daemon: DockerDaemon, name: string): Promise<Record<string, string>> {
  const { State } = await inspect(daemon, name);
  const env: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${String(State.Pid)}/environ`, 'utf8').split('\0')) {
    const at = entry.indexOf('=');
    if (at > 0) env[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return env;
}

export interface SocketEnd {
  local: string;
  remote: string;
  state: string;
}

/** The TCP sockets the process holds (matched by inode in its network namespace's tables). */
export function tcpSocketsOf(pid: number): SocketEnd[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${String(pid)}/fd`)) {
    const target = (() => {
      try {
        return readlinkSync(`/proc/${String(pid)}/fd/${fd}`);
      } catch {
        return '';
      }
    })();
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match) inodes.add(match[1] as string);
  }
  const sockets: SocketEnd[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${String(pid)}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || !inodes.has(fields[9] as string)) continue;
      sockets.push({ local: address(fields[1] as string), remote: address(fields[2] as string), state: fields[3] === '0A' ? 'LISTEN' : fields[3] as string });
    }
  }
  return sockets;
}

/** `0100007F:1F90` (or its IPv6 form) as `127.0.0.1:8080`; IPv4-mapped IPv6 shown as IPv4. */
function address(hex: string): string {
  const [ip = '', port = '0'] = hex.split(':');
  const portNumber = parseInt(port, 16);
  if (ip.length === 8) return `${bytesOf(ip).reverse().join('.')}:${String(portNumber)}`;
  const words = (ip.match(/.{8}/g) ?? []).map((w) => bytesOf(w).reverse());
  const flat = words.flat();
  const isMapped = flat.slice(0, 10).every((b) => b === 0) && flat[10] === 255 && flat[11] === 255;
  if (isMapped) return `${flat.slice(12).join('.')}:${String(portNumber)}`;
  if (flat.every((b) => b === 0)) return `[::]:${String(portNumber)}`;
  if (flat.slice(0, 15).every((b) => b === 0) && flat[15] === 1) return `[::1]:${String(portNumber)}`;
  return `[${flat.map((b) => b.toString(16).padStart(2, '0')).join('')}]:${String(portNumber)}`;
}

function bytesOf(hex: string): number[] {
  return (hex.match(/../g) ?? []).map((b) => parseInt(b, 16));
}
