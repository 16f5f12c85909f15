import { createServer } from 'node:net';

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A free port below the kernel's ephemeral range (net.ipv4.ip_local_port_range starts at 32768), for a listener whose
 * port is chosen long before it binds (a proxy whose origin the nodes must know first). freePort's ports come from
 * that range, so in between, another process's listener or any outgoing connection can take them (nginx then fails
 * with EADDRINUSE); a port below it is taken only by a listener that asks for it by number.
 */
export async function reservedPort(attempts = 50): Promise<number> {
  for (let i = 0; i < attempts; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await isFree(port)) return port;
  }
  throw new Error(`no free port below the ephemeral range after ${String(attempts)} attempts`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}
