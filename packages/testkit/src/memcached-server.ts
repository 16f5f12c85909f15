import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
export async function startMemcached(options: { memoryMb?: number; sasl?: MemcachedSaslUser } = {}): Promise<MemcachedServer> {
  const memoryMb = options.memoryMb ?? 64;
  const sasl = options.sasl ? await saslConfig(options.sasl) : undefined;
  let lastError: unknown;
  // The free port can be taken by someone else before memcached binds it; then try another one.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      const child = await launch(port, memoryMb, sasl);
      return handle(port, memoryMb, child, sasl);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

function handle(port: number, memoryMb: number, first: ChildProcess, sasl: string | undefined): MemcachedServer {
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
      child = await launch(port, memoryMb, sasl);
    },
  };
}

/** A SASL user memcached accepts (SASL PLAIN against a sasldb made here with saslpasswd2, from Debian's sasl2-bin). */
export interface MemcachedSaslUser {
  username: string;
  password: string;
}

/** A directory holding the user's sasldb and the memcached.conf naming it: SASL_CONF_PATH for the server. */
async function saslConfig(user: MemcachedSaslUser): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'memcached-sasl-'));
  const db = join(dir, 'sasldb2');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('saslpasswd2', ['-p', '-a', 'memcached', '-c', '-f', db, user.username], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`saslpasswd2 exited ${String(code)}: ${stderr.trim()}`))));
    child.stdin.end(user.password);
  });
  await writeFile(join(dir, 'memcached.conf'), `mech_list: plain\nsasldb_path: ${db}\n`);
  return dir;
}

async function launch(port: number, memoryMb: number, sasl: string | undefined): Promise<ChildProcess> {
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', String(memoryMb)];
  // memcached refuses to run as root without naming a user (exit 64).
  if (process.getuid?.() === 0) args.push('-u', 'root');
  if (sasl !== undefined) args.push('-S');
  const env = sasl === undefined ? process.env : { ...process.env, SASL_CONF_PATH: sasl };
  // Its own process group: a terminal's Ctrl-C must not stop it before the nodes have drained through it.
  const child = spawn('memcached', args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'], env });
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
    if ((await (sasl === undefined ? answersVersion(port) : answersBinary(port))) && child.exitCode === null) return child;
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

/**
 * With SASL on, memcached speaks only its binary protocol and refuses everything before authentication: any binary
 * answer (here to a version request) says it is up.
 */
function answersBinary(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    const request = Buffer.alloc(24);
    request[0] = 0x80;
    request[1] = 0x0b;
    socket.once('connect', () => socket.write(request));
    socket.once('data', (chunk: Buffer) => done(chunk[0] === 0x81));
    socket.once('error', () => done(false));
  });
}

/** The raw value of `key` over memcached's text protocol, so a test checks a store's key layout as an operator reads it. */
export async function memcachedRawGet(address: string, key: string): Promise<string | undefined> {
  const [host, port] = address.split(':') as [string, string];
  const socket = connect(Number(port), host);
  let data = '';
  socket.setEncoding('utf8');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.on('data', (chunk: string) => {
        data += chunk;
        if (data.endsWith('END\r\n')) resolve();
      });
      socket.write(`get ${key}\r\n`);
    });
  } finally {
    socket.destroy();
  }
  return /^VALUE \S+ \d+ \d+\r\n([\s\S]*)\r\nEND\r\n$/.exec(data)?.[1];
}
