import type { Socket } from 'node:net';
import type memjs from 'memjs';

/** What this module uses of a memjs Server: `sock` hands the (connected) socket to the callback that writes. */
interface SocketOwner {
  sock(sasl: boolean, go: (socket: Socket) => void): void;
}

const corked = new WeakSet<Socket>();

/**
 * Makes every request that memjs writes during one turn of the event loop go out in one socket write. memjs writes
 * each request by itself, and on this machine a socket write is the largest single cost of a connect (a quarter of
 * the gateway's and the node's busy time in a profile of 3,000 connects): under load, the requests that many
 * concurrent handshakes issue in the same turn are then one syscall. The socket is corked on the first write of a
 * turn and uncorked by setImmediate, right after the poll phase that produced those requests, so no request waits
 * longer than that turn. Requests and answers keep their order (memcached answers a connection in order).
 */
export function batchWrites(client: memjs.Client): void {
  for (const server of client.servers) {
    const owner = server as unknown as SocketOwner;
    const sock = owner.sock.bind(owner);
    owner.sock = (sasl, go) => {
      sock(sasl, (socket) => {
        if (!corked.has(socket)) {
          corked.add(socket);
          socket.cork();
          setImmediate(() => {
            corked.delete(socket);
            socket.uncork();
          });
        }
        go(socket);
      });
    };
  }
}
