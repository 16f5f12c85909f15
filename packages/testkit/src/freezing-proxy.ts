import { createConnection, createServer, type Server, type Socket } from 'node:net';

interface Pipe {
  client: Socket;
  upstream: Socket;
  /** The first bytes the client sent (the HTTP request line names the user). */
  head: string;
  frozen: boolean;
}

/**
 * A TCP proxy of the test's own, between clients and one node's public port, that can go silent on chosen
 * connections: it keeps both sockets open and swallows every byte in both directions, with no FIN and no RST, like a
 * NAT that forgot the flow or a phone that changed networks. Connections opened afterwards are forwarded normally.
 */
export class FreezingProxy {
  readonly #pipes = new Set<Pipe>();
  #server: Server | undefined;

  constructor(private readonly targetPort: number) {}

  async listen(port: number): Promise<void> {
    const server = createServer((client) => this.accept(client));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  }

  /** Goes silent on every open connection whose first request matches; returns how many. */
  freeze(match: (head: string) => boolean): number {
    let frozen = 0;
    for (const pipe of this.#pipes) {
      if (pipe.frozen || !match(pipe.head)) continue;
      pipe.frozen = true;
      frozen += 1;
    }
    return frozen;
  }

  async close(): Promise<void> {
    for (const pipe of this.#pipes) {
      pipe.client.destroy();
      pipe.upstream.destroy();
    }
    this.#pipes.clear();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  private accept(client: Socket): void {
    const upstream = createConnection({ host: '127.0.0.1', port: this.targetPort });
    const pipe: Pipe = { client, upstream, head: '', frozen: false };
    this.#pipes.add(pipe);
    client.on('data', (chunk: Buffer) => {
      if (pipe.head.length < 2048) pipe.head += chunk.toString('latin1');
      if (!pipe.frozen) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pipe.frozen) client.write(chunk);
    });
    // An end on either side reaches the other only while the flow is alive; a frozen one says nothing, ever.
    const end = (other: Socket) => () => {
      if (!pipe.frozen) other.end();
    };
    client.on('end', end(upstream));
    upstream.on('end', end(client));
    const gone = (): void => {
      if (pipe.frozen) return;
      client.destroy();
      upstream.destroy();
      this.#pipes.delete(pipe);
    };
    client.on('error', gone);
    upstream.on('error', gone);
    client.on('close', gone);
    upstream.on('close', gone);
  }
}
