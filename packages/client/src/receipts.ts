import type { Clock } from './transport.js';

/** The bounds the contract (v1.2) and the node's load allow: a receipt within 200 ms, and not more often than 50 ms. */
export const RECEIPT_DELAY_BOUNDS = { min: 50, max: 200 } as const;

/**
 * The SDK's receipts on one connection opened with `receipts=1` (contract v1.2): the highest `seq` received, confirmed
 * with one cumulative `{"type":"receipt","seq":N}` `delayMs` after the first message it does not cover yet, so a
 * stream of messages costs one receipt per `delayMs` at most. Repeats are confirmed too (their seq is new).
 */
export class ReceiptSender {
  #received = 0;
  #confirmed = 0;
  #timer: unknown;

  constructor(
    private readonly clock: Clock,
    private readonly delayMs: number,
    private readonly send: (frame: string) => void,
  ) {}

  /** A message with this seq arrived. */
  received(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq <= this.#received) return;
    this.#received = seq;
    if (this.#timer === undefined) this.#timer = this.clock.setTimeout(() => this.flush(), this.delayMs);
  }

  /** Confirms now whatever is not confirmed yet (the timer, or right before the client closes the connection). */
  flush(): void {
    this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#received <= this.#confirmed) return;
    this.#confirmed = this.#received;
    try {
      this.send(JSON.stringify({ type: 'receipt', seq: this.#confirmed }));
    } catch {
      // A dead socket: the node delivers again what it did not hear about.
    }
  }

  /** A new connection: seqs count from 1 again. */
  reset(): void {
    this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#received = 0;
    this.#confirmed = 0;
  }
}

/** The option's value within RECEIPT_DELAY_BOUNDS (default 100 ms). */
export function receiptDelayOf(ms: number | undefined): number {
  return Math.min(RECEIPT_DELAY_BOUNDS.max, Math.max(RECEIPT_DELAY_BOUNDS.min, ms ?? 100));
}
