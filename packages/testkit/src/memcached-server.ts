import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { freePort } from './free-port.js';
import { setTimeout as sleep } from 'node:timers/promises';

export interface MemcachedServer {
  readonly port: number;
  /** `127.0.0.1:<port>`, as MSG_MEMCACHED_SERVERS expects it. */
  readonly address: string;
  /** True while the process runs. */
  readonly running: boolean;
  /** SIGTERM, and resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, and resolves once the process has exited. Idempotent. */
  kill(): Promise<void>;
  /** Stops (if running) and starts again on the same port, empty; resolves when it accepts connections. */
  restart(): Promise<void>;
}

// Children still running when the test process exits are killed, so a failed test never leaves memcached behind.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Starts a real memcached on a free 127.0.0.1 port (memory only, UDP off) and waits until it accepts. */
export async function startMemcached(options: { memoryMb?: number } = {}): Promise<MemcachedServer> {
  const port = await freePort();
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', String(options.memoryMb ?? 64)];
  // memcached refuses to run as root without naming a user (exit 64).
  if (process.getuid?.() === 0) args.push('-u', 'root');

  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const started = spawn('memcached', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    started.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    let spawnError: Error | undefined;
    const exited = new Promise<void>((resolve) => {
      started.once('exit', () => resolve());
      started.once('error', (error) => {
        spawnError = error;
        resolve();
      });
    });
    live.add(started);
    void exited.then(() => live.delete(started));
    child = started;
    const deadline = Date.now() + 5000;
    for (;;) {
      const gone = spawnError !== undefined || started.exitCode !== null || started.signalCode !== null;
      if (gone) {
        const reason = spawnError?.message ?? `exit ${String(started.exitCode ?? started.signalCode)}`;
        throw new Error(`memcached on port ${String(port)} did not start (${reason}): ${stderr.trim()}`);
      }
      if (await accepts(port)) return;
      if (Date.now() > deadline) {
        started.kill('SIGKILL');
        await exited;
        throw new Error(`memcached on port ${String(port)} did not accept connections within 5 s: ${stderr.trim()}`);
      }
      await sleep(20);
    }
  };

  const signal = async (name: NodeJS.Signals): Promise<void> => {
    const current = child;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => current.once('exit', () => resolve()));
    current.kill(name);
    await exited;
  };

  await launch();
  return {
    port,
    address: `127.0.0.1:${String(port)}`,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async restart() {
      await signal('SIGTERM');
      await launch();
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
