/**
 * The load generator's side of contract v1.2's receipts, and its ack clock (kept out of loadgen.ts, which is
 * already long).
 *
 * Confirmer: one timer per load-generator process, every CONFIRM_INTERVAL_MS, sends each connection opened with
 * `receipts=1` one cumulative `{"type":"receipt","seq":N}` for the highest seq it has seen, only when that advanced.
 * The SDK arms a timer per connection instead (100 ms after the first message not yet covered); one shared timer
 * costs this process less at 400 connections, and it confirms at the same pace: within 100 ms (plus the lag of a
 * busy event loop). While measuring it records each message's wait from its arrival to the receipt that covered
 * it: the part of the ack latency the interval contributes.
 *
 * AckClock: sender's send → sender's `ack`, per message id, for the scenarios that report ack latency.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

export const CONFIRM_INTERVAL_MS = 100;

/** One connection with receipts on: what it has seen and what it has confirmed. */
export interface ReceiptState {
  ws: WebSocket;
  highest: number;
  confirmed: number;
  /** Arrival times of the messages not covered yet, kept only while measuring. */
  arrivals: number[];
}

export class Confirmer {
  readonly #tracked = new Set<ReceiptState>();
  #timer: NodeJS.Timeout | undefined;
  /** Waits from arrival to receipt, collected while measuring; undefined otherwise. */
  #waits: number[] | undefined;
  #receipts = 0;

  /** Starts confirming for `ws`; it stops by itself when the socket closes. */
  track(ws: WebSocket): ReceiptState {
    const state: ReceiptState = { ws, highest: 0, confirmed: 0, arrivals: [] };
    this.#tracked.add(state);
    ws.once('close', () => {
      this.#tracked.delete(state);
      if (this.#tracked.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    });
    this.#timer ??= setInterval(() => this.#tick(), CONFIRM_INTERVAL_MS);
    return state;
  }

  /** A message with `seq` arrived on `state`'s connection. */
  seen(state: ReceiptState, seq: number): void {
    if (seq > state.highest) state.highest = seq;
    if (this.#waits) state.arrivals.push(performance.now());
  }

  /** Starts collecting confirm waits and counting receipts (a measurement window opens). */
  startMeasuring(): void {
    this.#waits = [];
    this.#receipts = 0;
    for (const state of this.#tracked) state.arrivals.length = 0;
  }

  /** Ends the window: the waits collected and the receipts sent in it. */
  stopMeasuring(): { waits: number[]; receipts: number } {
    const waits = this.#waits ?? [];
    this.#waits = undefined;
    return { waits, receipts: this.#receipts };
  }

  #tick(): void {
    const now = performance.now();
    for (const state of this.#tracked) {
      if (state.highest <= state.confirmed || state.ws.readyState !== WebSocket.OPEN) continue;
      state.confirmed = state.highest;
      // The client's frames are a SockJS array of JSON strings, as for every other frame it sends.
      state.ws.send(`["{\\"type\\":\\"receipt\\",\\"seq\\":${String(state.confirmed)}}"]`);
      this.#receipts += 1;
      if (this.#waits) for (const at of state.arrivals) this.#waits.push(now - at);
      state.arrivals.length = 0;
    }
  }
}

/** Send times by message id, per sending connection; an ack takes its id's time out and yields the latency. */
export class AckClock {
  readonly #sentAt = new Map<string, number>();

  sent(id: string): void {
    this.#sentAt.set(id, performance.now());
  }

  /** The latency of the ack for `id`, or undefined when its send was not timed (before this run, or a repeat). */
  acked(id: string): number | undefined {
    const at = this.#sentAt.get(id);
    if (at === undefined) return undefined;
    this.#sentAt.delete(id);
    return performance.now() - at;
  }

  clear(): void {
    this.#sentAt.clear();
  }
}
