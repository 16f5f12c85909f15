import { closeStream, type EtcdConnection, type KeepaliveStream } from './etcd-connection.js';

/**
 * Keeps one lease alive every TTL/3 on a keepalive stream, and reports it lost once etcd has not acknowledged a
 * keepalive sent within the last TTL (etcd away, or hung) or says the lease is gone. Reopens a broken stream by
 * itself. After `lost` it stops; the owner grants a new lease.
 */
export class LeaseKeeper {
  private stream: KeepaliveStream | undefined;
  private opening = false;
  private timer: NodeJS.Timeout | undefined;
  /** Send times of keepalives not answered yet, oldest first (answers come in order on one stream). */
  private pending: number[] = [];
  private stopped = false;

  constructor(
    private readonly connection: EtcdConnection,
    readonly leaseId: string,
    private readonly ttlSeconds: number,
    /** When the grant request was sent: etcd's countdown cannot have started before. */
    private lastAckedSendTime: number,
    private readonly events: { onLost(reason: string): void; onAck(): void },
  ) {}

  start(): void {
    const intervalMs = Math.max(50, (this.ttlSeconds * 1000) / 3);
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.stream) closeStream(this.stream);
    this.stream = undefined;
  }

  private tick(): void {
    if (this.stopped) return;
    if (Date.now() - this.lastAckedSendTime > this.ttlSeconds * 1000) {
      this.lose('keepalive not acknowledged within the lease ttl');
      return;
    }
    if (!this.stream) {
      this.open();
      return;
    }
    this.send(this.stream);
  }

  private send(stream: KeepaliveStream): void {
    this.pending.push(Date.now());
    try {
      stream.write({ ID: this.leaseId });
    } catch {
      this.drop(stream);
    }
  }

  private open(): void {
    if (this.opening) return;
    this.opening = true;
    this.connection
      .openKeepalive()
      .then((stream) => {
        this.opening = false;
        if (this.stopped) {
          closeStream(stream);
          return;
        }
        this.stream = stream;
        this.pending = [];
        stream.on('data', (response: { TTL: string }) => this.onResponse(stream, response));
        stream.on('error', () => this.drop(stream));
        stream.on('end', () => this.drop(stream));
        this.send(stream);
      })
      .catch(() => {
        this.opening = false;
      });
  }

  private onResponse(stream: KeepaliveStream, response: { TTL: string }): void {
    if (stream !== this.stream || this.stopped) return;
    const sentAt = this.pending.shift() ?? Date.now();
    if (!(Number(response.TTL) > 0)) {
      this.lose('lease expired');
      return;
    }
    this.lastAckedSendTime = Math.max(this.lastAckedSendTime, sentAt);
    this.events.onAck();
  }

  private drop(stream: KeepaliveStream): void {
    if (stream !== this.stream) return;
    this.stream = undefined;
    this.pending = [];
    closeStream(stream);
  }

  private lose(reason: string): void {
    if (this.stopped) return;
    this.stop();
    this.events.onLost(reason);
  }
}
