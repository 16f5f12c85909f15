/**
 * A Docker daemon of our own (docs/operations.md, "Build and test the image"): its state under a directory we name,
 * no bridge, no iptables rules, no forwarding, so every container must use the host network and nothing it sends
 * leaves loopback unless a test points it elsewhere. It is a child of this process (PID 1 here reaps no orphans)
 * and is stopped by signalling that child, never by name.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface DockerDaemon {
  /** `unix://…/docker.sock`: give it to the CLI as DOCKER_HOST. */
  readonly host: string;
  /** process.env with DOCKER_HOST set and BuildKit off (the legacy builder needs no image of its own). */
  readonly env: NodeJS.ProcessEnv;
  /** Where the daemon writes its log. */
  readonly logFile: string;
  /** Runs the docker CLI against this daemon; rejects with its stderr when it exits non-zero. */
  docker(args: readonly string[], options?: { timeoutMs?: number }): Promise<string>;
  /** SIGTERM (SIGKILL after 20 s), waits for the exit, unmounts what the daemon leaves mounted. Idempotent. */
  stop(): Promise<void>;
}

/** Bridges that a daemon started without `--bridge=none` would create. */
export const DOCKER_BRIDGE = 'docker0';

/**
 * Starts dockerd with its images and containers under `dataRoot` (kept between runs, so rebuilds hit the layer
 * cache) and its run-time state in a fresh directory under /tmp (socket paths must stay short).
 */
export async function startDockerDaemon(dataRoot: string, options: { readyTimeoutMs?: number } = {}): Promise<DockerDaemon> {
  mkdirSync(dataRoot, { recursive: true });
  const runDir = mkdtempSync('/tmp/msd-');
  const socket = join(runDir, 'docker.sock');
  const host = `unix://${socket}`;
  const logFile = join(dataRoot, '..', 'dockerd.log');
  const args = [
    '--data-root', dataRoot,
    '--exec-root', join(runDir, 'exec'),
    '-H', host,
    '--pidfile', join(runDir, 'docker.pid'),
    // vfs works on any file system (overlay on overlay does not); it copies layers, which is why images stay small.
    '--storage-driver', 'vfs',
    '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false',
  ];
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn('dockerd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false' };
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= shutdown(child, exited, runDir).finally(() => log.end()));
  const onExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', onExit);
  try {
    await waitForPing(socket, child, options.readyTimeoutMs ?? 60_000, logFile);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    host,
    env,
    logFile,
    async docker(rest, opts = {}) {
      const { stdout } = await execFileAsync('docker', [...rest], { env, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024 });
      return stdout;
    },
    stop: () => stop().finally(() => process.removeListener('exit', onExit)),
  };
}

async function shutdown(child: ChildProcess, exited: Promise<void>, runDir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const force = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(force);
  }
  // The daemon leaves its default network namespace mounted; removing the directory under it would fail.
  const netns = join(runDir, 'exec', 'netns', 'default');
  if (existsSync(netns)) await execFileAsync('umount', [netns]).catch(() => undefined);
  rmSync(runDir, { recursive: true, force: true });
}

function waitForPing(socket: string, child: ChildProcess, timeoutMs: number, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(new Error(`dockerd exited (${String(child.exitCode ?? child.signalCode)}); see ${logFile}`));
        return;
      }
      const req = request({ socketPath: socket, path: '/_ping', timeout: 1000 }, (res) => {
        res.resume();
        if (res.statusCode === 200) resolve();
        else retry();
      });
      req.on('error', retry);
      req.on('timeout', () => req.destroy());
      req.end();
    };
    const retry = (): void => {
      if (Date.now() > deadline) reject(new Error(`dockerd did not answer within ${String(timeoutMs)} ms; see ${logFile}`));
      else setTimeout(attempt, 100);
    };
    attempt();
  });
}
