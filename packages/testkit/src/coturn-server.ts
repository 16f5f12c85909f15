import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { ManagedProcess } from './process.js';
import { waitFor } from './wait-for.js';

export interface CoturnServer {
  readonly port: number;
  /** `turn:<address>:<port>?transport=udp`, as MSG_TURN_URLS takes it. */
  readonly url: string;
  readonly process: ManagedProcess;
  /** SIGTERM (SIGKILL after 5 s), then removes its files. Idempotent. */
  stop(): Promise<void>;
}

export interface CoturnOptions {
  /** The address it listens and relays on (not loopback: coturn refuses loopback peers by default). */
  address: string;
  /** `static-auth-secret`: it accepts TURN REST credentials signed with this, and nothing else. */
  secret: string;
  /** Default: a free port. */
  port?: number;
}

/**
 * Starts a real coturn (Debian's `turnserver`) with TURN REST authentication (`use-auth-secret`), UDP only, no TLS,
 * and resolves once it answers a STUN binding request. Its output stays in `process.logs()`.
 */
export async function startCoturn(options: CoturnOptions): Promise<CoturnServer> {
  const port = options.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'msg-coturn-'));
  const args = [
    '-n', // no configuration file: everything is on this line
    `--listening-ip=${options.address}`,
    `--listening-port=${String(port)}`,
    `--relay-ip=${options.address}`,
    '--use-auth-secret',
    `--static-auth-secret=${options.secret}`,
    '--realm=messaging-server.test',
    '--no-tls',
    '--no-dtls',
    '--no-tcp-relay',
    '--no-cli',
    '--fingerprint',
    `--pidfile=${join(dir, 'turnserver.pid')}`,
    `--db=${join(dir, 'turndb')}`,
    '--log-file=stdout',
    '--simple-log',
    '--verbose', // logs each allocation with its username, so a test can see which credentials were used
  ];
  const proc = new ManagedProcess('coturn', 'turnserver', args, { PATH: process.env['PATH'] });
  let stopped: Promise<void> | undefined;
  const server: CoturnServer = {
    port,
    url: `turn:${options.address}:${String(port)}?transport=udp`,
    process: proc,
    stop: () =>
      (stopped ??= (async () => {
        await proc.stop(5000);
        await rm(dir, { recursive: true, force: true });
      })()),
  };
  try {
    await waitFor(
      async () => {
        if (!proc.running) throw new Error(`turnserver exited:\n${proc.logs().slice(-2000)}`);
        return stunBinding(options.address, port);
      },
      { timeoutMs: 10_000, intervalMs: 100, what: `coturn on ${options.address}:${String(port)}` },
    );
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/** True when a STUN binding request (RFC 5389) to the address gets a success response within 200 ms. */
function stunBinding(address: string, port: number): Promise<boolean> {
  const request = Buffer.alloc(20);
  request.writeUInt16BE(0x0001, 0); // Binding request, no attributes
  request.writeUInt32BE(0x2112a442, 4); // magic cookie
  randomBytes(12).copy(request, 8);
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const done = (answered: boolean): void => {
      clearTimeout(timer);
      socket.close();
      resolve(answered);
    };
    const timer = setTimeout(() => done(false), 200);
    socket.on('error', () => done(false));
    socket.on('message', (message) => done(message.readUInt16BE(0) === 0x0101 && message.subarray(8, 20).equals(request.subarray(8, 20))));
    socket.send(request, port, address);
  });
}
