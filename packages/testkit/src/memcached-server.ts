import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './free-port.js';

export interface MemcachedServer {
  readonly port: number;
  /** `127.0.0.1:<port>`, as MSG_MEMCACHED_SERVERS expects it. */
  readonly address: string;
  /** True while the process runs. */
  readonly running: boolean;
  /** SIGTERM (SIGKILL after 3 s), and resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, and resolves once the process has exited. Idempotent. */
  kill(): Promise<void>;
  /** Stops (if running) and starts again on the same port, empty; resolves when it answers. */
  restart(): Promise<void>;
}

// Children still running when the test process exits are killed, so a failed test never leaves memcached behind.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * Starts a real memcached on a free 127.0.0.1 port (memory only, UDP off) and resolves once it answers a
 * `version` command. Tests stop it in an `after` hook; anything left is killed when the test process exits.
 */
export async function startMemcached(options: { memoryMb?: number } = {}): Promise<MemcachedServer> {
  const memoryMb = options.memoryMb ?? 64;
  let lastError: unknown;
  // The free port can be taken by someone else before memcached binds it; then try another one.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      const child = await launch(port, memoryMb);
      return handle(port, memoryMb, child);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

function handle(port: number, memoryMb: number, first: ChildProcess): MemcachedServer {
  let child = first;
  const signal = async (name: NodeJS.Signals): Promise<void> => {
    const current = child;
    if (current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => current.once('exit', () => resolve()));
    current.kill(name);
    // A memcached that ignores SIGTERM must not hang the suite.
    const escalate = name === 'SIGKILL' ? undefined : setTimeout(() => current.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(escalate);
  };
  return {
    port,
    address: `127.0.0.1:${String(port)}`,
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async restart() {
      await signal('SIGTERM');
      child = await launch(port, memoryMb);
    },
  };
}

async function launch(port: number, memoryMb: number): Promise<ChildProcess> {
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', String(memoryMb)];
  // memcached refuses to run as root without naming a user (exit 64).
  if (process.getuid?.() === 0) args.push('-u', 'root');
  // Its own process group: a terminal's Ctrl-C must not stop it before the nodes have drained through it.
  const child = spawn('memcached', args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (error) => {
      spawnError = error;
      resolve();
    });
  });
  live.add(child);
  void exited.then(() => live.delete(child));

  const deadline = Date.now() + 5000;
  for (;;) {
    if (spawnError !== undefined || child.exitCode !== null || child.signalCode !== null) {
      const reason = spawnError?.message ?? `exit ${String(child.exitCode ?? child.signalCode)}`;
      throw new Error(`memcached on port ${String(port)} did not start (${reason}): ${stderr.trim()}`);
    }
    // Checking the child again after the probe: the answer must come from our process, not a squatter.
    if ((await answersVersion(port)) && child.exitCode === null) return child;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`memcached on port ${String(port)} did not answer within 5 s: ${stderr.trim()}`);
    }
    await sleep(20);
  }
}

function answersVersion(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('connect', () => socket.write('version\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('VERSION '));
    });
    socket.once('error', () => done(false));
  });
}
