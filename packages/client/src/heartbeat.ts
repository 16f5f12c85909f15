import type { Clock } from './transport.js';

export interface HeartbeatOptions {
  clock: Clock;
  /** 0 turns pings off. */
  intervalMs: number;
  timeoutMs: number;
  /** Writes one ping frame; a socket that cannot send is caught by the pong deadline. */
  send(frame: string): void;
  /** No pong within `timeoutMs`: the connection is dead. */
  dead(): void;
}

/**
 * The SDK's liveness check on one connection: a ping every `intervalMs` of an open connection, and a connection
 * whose pong does not come within `timeoutMs` is reported dead. `stop()` before the connection goes.
 */
export class Heartbeat {
  #pingTimer: unknown;
  #pongTimer: unknown;
  #pingId: string | undefined;
  #counter = 0;
  #running = false;

  constructor(private readonly options: HeartbeatOptions) {}

  /** Starts (or restarts) the ping schedule after a welcome. */
  start(): void {
    this.stop();
    this.#running = true;
    this.schedule();
  }

  stop(): void {
    this.#running = false;
    this.options.clock.clearTimeout(this.#pingTimer);
    this.options.clock.clearTimeout(this.#pongTimer);
    this.#pingId = undefined;
  }

  /** True for the id of the ping in flight: its error frame (a rate limit) is the heartbeat's, not the app's. */
  owns(id: string | undefined): boolean {
    return id !== undefined && id === this.#pingId;
  }

  /** A pong arrived; one without an id answers whatever ping is in flight. */
  pong(id: string | undefined): void {
    if (this.#pingId === undefined || (id !== undefined && id !== this.#pingId)) return;
    this.#pingId = undefined;
    this.options.clock.clearTimeout(this.#pongTimer);
    this.schedule();
  }

  private schedule(): void {
    const { clock, intervalMs, timeoutMs } = this.options;
    if (intervalMs <= 0 || !this.#running) return;
    clock.clearTimeout(this.#pingTimer);
    this.#pingTimer = clock.setTimeout(() => {
      if (!this.#running) return;
      const id = `p${String(++this.#counter)}`;
      this.#pingId = id;
      try {
        this.options.send(JSON.stringify({ type: 'ping', id }));
      } catch {
        // caught by the pong deadline below
      }
      this.#pongTimer = clock.setTimeout(() => {
        if (this.#running) this.options.dead();
      }, timeoutMs);
    }, intervalMs);
  }
}
