// One HTTP exchange on a raw TCP socket, timed until the server closes the connection: what a port does with a
// client that never finishes its headers, never stops sending its body, or just stays connected.
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface RawClose {
  /** The first status code the server sent, if any. */
  status: number | undefined;
  /** From the connection's start to the first answer byte (undefined without an answer). */
  answeredMs: number | undefined;
  /** From the connection's start until the server closed it (or the deadline). */
  closedMs: number;
  /** Bytes of body this side managed to write. */
  bodyBytes: number;
  /** The deadline passed with the connection still open. */
  timedOut: boolean;
}

/**
 * Writes `head`, then, when `endlessBody` is set, 64 KiB chunks of a chunked body for as long as the socket takes
 * them (through any answer: a server that answers but keeps reading still holds the connection). Resolves once the
 * server closes the connection, or at `deadlineMs` with `timedOut`.
 */
export function untilClosed(port: number, head: string, options: { endlessBody?: boolean; deadlineMs: number }): Promise<RawClose> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let answeredMs: number | undefined;
    let bodyBytes = 0;
    let done = false;
    const chunk = Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(0x10000, 0x61), Buffer.from('\r\n')]);
    const finish = (timedOut: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(received);
      resolve({ status: match ? Number(match[1]) : undefined, answeredMs, closedMs: performance.now() - started, bodyBytes, timedOut });
    };
    const timer = setTimeout(() => finish(true), options.deadlineMs);
    const pump = (): void => {
      while (options.endlessBody && !done && !socket.destroyed) {
        bodyBytes += 0x10000;
        if (!socket.write(chunk)) return;
      }
    };
    socket.on('connect', () => {
      socket.write(head);
      pump();
    });
    socket.on('drain', pump);
    socket.on('data', (data: Buffer) => {
      answeredMs ??= performance.now() - started;
      received += data.toString('latin1');
    });
    socket.on('end', () => finish(false));
    socket.on('close', () => finish(false));
    socket.on('error', () => finish(false));
  });
}
