/**
 * Exponential backoff with jitter and a cap: the one retry schedule of the code base (etcd registration and watch,
 * the gateway's start-up retries, the memory registry, and the SDK's reconnects).
 *
 * Attempt n (0-based) has the ceiling `min(maxMs, initialMs · factor^n)`. `jitter` is the fraction of that ceiling
 * that is random: 1 (the default) is "full jitter", uniform in [0, ceiling), which spreads a fleet that failed
 * together; 0 is the plain exponential schedule; 0.5 is uniform in [ceiling/2, ceiling). (socket.io's
 * `randomizationFactor` spreads ± around the ceiling instead, so its 0.5 averages the ceiling and ours 3/4 of it.)
 * Browser-safe: no timers, no Node APIs.
 */
export interface BackoffOptions {
  /** Ceiling of the first attempt, in ms. */
  initialMs: number;
  /** Largest ceiling, in ms. */
  maxMs: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Random share of each delay, 0–1. Default 1 (full jitter). */
  jitter?: number;
  /** Default Math.random; tests pass their own. */
  random?: () => number;
}

export class Backoff {
  #attempt = 0;
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;

  constructor(options: BackoffOptions) {
    this.#initialMs = Math.max(0, options.initialMs);
    this.#maxMs = Math.max(this.#initialMs, options.maxMs);
    this.#factor = Math.max(1, options.factor ?? 2);
    this.#jitter = Math.min(1, Math.max(0, options.jitter ?? 1));
    this.#random = options.random ?? Math.random;
  }

  /** Failed attempts since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The ceiling of attempt `n` (default: the next one). */
  ceiling(n = this.#attempt): number {
    // The cap on the exponent keeps `factor ** n` a small finite number for callers that count attempts for ever.
    const exponent = Math.min(Math.max(n, 0), 64);
    return Math.min(this.#maxMs, this.#initialMs * this.#factor ** exponent);
  }

  /** The delay before the next attempt; counts the attempt. */
  next(): number {
    const delay = this.delay(this.#attempt);
    this.#attempt += 1;
    return delay;
  }

  /** The delay for attempt `n`, for callers that count attempts themselves (a pure reconnect policy). */
  delay(n: number): number {
    const ceiling = this.ceiling(n);
    return Math.floor(ceiling * (1 - this.#jitter) + ceiling * this.#jitter * this.#random());
  }

  /** After a success: the next delay starts from the first ceiling again. */
  reset(): void {
    this.#attempt = 0;
  }
}
