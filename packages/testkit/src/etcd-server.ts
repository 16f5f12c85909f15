import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';
import { waitFor } from './wait-for.js';

const execFileAsync = promisify(execFile);

export interface EtcdServer {
  /** `http://127.0.0.1:<port>`: pass as an endpoint to EtcdRegistry. */
  readonly endpoint: string;
  readonly clientPort: number;
  readonly dataDir: string;
  /** True while the process runs. */
  readonly running: boolean;
  /** SIGTERM and wait for exit. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. Idempotent. */
  kill(): Promise<void>;
  /** Starts again on the same ports with the same data dir (stops it first if it runs); waits for health. */
  restart(): Promise<void>;
  /** Current store revision. */
  revision(): Promise<number>;
  /** Compacts the history up to `revision` (default: the current revision). Returns the revision compacted at. */
  compact(revision?: number): Promise<number>;
  /** Stops the process and deletes the data dir. */
  remove(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Mocha's --exit and a failing test can skip after() hooks; never leave an etcd behind.
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

function tempRoot(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

/** An etcd user whose role may read and write one key prefix; with it, etcd runs with authentication enabled. */
export interface EtcdUser {
  username: string;
  password: string;
  prefix: string;
}

/**
 * A real etcd on free ports with a fresh data dir, a child of this process. With `user`, etcd gets a root user (its
 * password known only here), a role that may read and write `user.prefix`, that user, and authentication enabled:
 * a client without the user's credentials is refused from then on (restarts keep it: it is in the data dir).
 */
export async function startEtcd(options: { readyTimeoutMs?: number; user?: EtcdUser } = {}): Promise<EtcdServer> {
  installExitHook();
  const readyTimeoutMs = options.readyTimeoutMs ?? 15_000;
  const dataDir = await mkdtemp(join(tempRoot(), 'etcd-test-'));
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const endpoint = `http://127.0.0.1:${String(clientPort)}`;
  const peerUrl = `http://127.0.0.1:${String(peerPort)}`;
  const args = [
    '--name', 't',
    '--data-dir', dataDir,
    '--listen-client-urls', endpoint,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `t=${peerUrl}`,
    '--initial-cluster-state', 'new',
    '--logger=zap',
    '--log-level=warn',
  ];

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stderrTail = '';

  const launch = async (): Promise<void> => {
    stderrTail = '';
    // Its own process group: a terminal's Ctrl-C must not stop it before the nodes have drained through it.
    const proc = spawn('etcd', args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    live.add(proc);
    exited = new Promise((resolve) => {
      proc.once('exit', () => {
        live.delete(proc);
        if (child === proc) child = undefined;
        resolve();
      });
      proc.once('error', () => {
        live.delete(proc);
        if (child === proc) child = undefined;
        resolve();
      });
    });
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString()).slice(-4000);
    });
    try {
      await waitFor(
        async () => {
          if (!child) throw new Error(`etcd exited: ${stderrTail}`);
          const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(500) });
          const body = (await response.json()) as { health?: string };
          return response.ok && body.health === 'true';
        },
        { timeoutMs: readyTimeoutMs, intervalMs: 20, what: `etcd health on ${endpoint}` },
      );
    } catch (error) {
      await signalAndWait('SIGKILL');
      throw error;
    }
  };

  const signalAndWait = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc) return exited;
    proc.kill(signal);
    await exited;
  };

  let rootUser: string[] = [];
  const etcdctl = async (...rest: string[]): Promise<string> => {
    const { stdout } = await execFileAsync('etcdctl', ['--endpoints', endpoint, '--command-timeout=3s', ...rootUser, ...rest], {
      env: { ...process.env, ETCDCTL_API: '3' },
      timeout: 5000,
    });
    return stdout;
  };

  const revision = async (): Promise<number> => {
    const out = await etcdctl('endpoint', 'status', '-w', 'json');
    const parsed = JSON.parse(out) as { Status: { header: { revision: number } } }[];
    const rev = parsed[0]?.Status.header.revision;
    if (typeof rev !== 'number') throw new Error(`unexpected etcdctl output: ${out}`);
    return rev;
  };

  await launch();
  if (options.user) {
    const { username, password, prefix } = options.user;
    const rootPassword = randomBytes(16).toString('hex');
    await etcdctl('user', 'add', `root:${rootPassword}`);
    await etcdctl('role', 'add', 'messaging-server');
    await etcdctl('role', 'grant-permission', 'messaging-server', '--prefix=true', 'readwrite', prefix);
    await etcdctl('user', 'add', `${username}:${password}`);
    await etcdctl('user', 'grant-role', username, 'messaging-server');
    await etcdctl('auth', 'enable');
    rootUser = ['--user', `root:${rootPassword}`];
  }

  return {
    endpoint,
    clientPort,
    dataDir,
    get running() {
      return child !== undefined;
    },
    stop: () => signalAndWait('SIGTERM'),
    kill: () => signalAndWait('SIGKILL'),
    async restart() {
      await signalAndWait('SIGTERM');
      await launch();
    },
    revision,
    async compact(rev?: number) {
      const at = rev ?? (await revision());
      await etcdctl('compact', String(at), '--physical');
      return at;
    },
    async remove() {
      await signalAndWait('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A key prefix no other test shares, e.g. `/test/registry-a1b2c3d4/`. Never flush globally; use one of these. */
export function uniquePrefix(name: string): string {
  const safe = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').slice(0, 40);
  return `/test/${safe}-${randomBytes(4).toString('hex')}/`;
}
