import type { WindowCounter } from '@messaging-server/core';
import { IpRateLimiter } from './ip-rate-limiter.js';

export interface SharedIpLimiterOptions {
  /** /connect requests one client address (its limit key) may make per minute, across every gateway. */
  perMinute: number;
  /** The counters every gateway shares (memcached, the session store's connection). */
  counter: WindowCounter;
  /** How long a count may take before this gateway decides alone. Default 50 ms: a /connect must not wait on it. */
  timeoutMs?: number;
  /** Called when the shared count failed or was late and the local bucket decided instead (a metric). */
  onFallback?: () => void;
  now?: () => number;
}

const WINDOW_MS = 60_000;

/**
 * The per-IP /connect limit shared by every gateway (issue 28): with N gateways behind a load balancer a per-process
 * bucket lets one address make N × the limit. Each gateway increments one memcached counter per address and minute
 * (fixed windows: an address can squeeze up to twice the limit across a window edge, never more); past the limit it
 * answers with the seconds left in the window. When memcached is slow or down the limit fails open to this
 * gateway's own token bucket, so it never blocks /connect on the store and still bounds each process alone.
 */
export class SharedIpLimiter {
  private readonly local: IpRateLimiter;
  private readonly now: () => number;

  constructor(private readonly options: SharedIpLimiterOptions) {
    this.local = new IpRateLimiter(options.perMinute);
    this.now = options.now ?? Date.now;
  }

  /** Takes one request for `key`. Resolves 0 when allowed, else the seconds after which to try again. */
  async take(key: string): Promise<number> {
    const now = this.now();
    const window = Math.floor(now / WINDOW_MS);
    let count: number;
    try {
      // Two windows of life: the key outlives its minute a little, whatever the clock skew between gateways.
      count = await within(this.options.counter.increment(`rl:${String(window)}:${key}`, (2 * WINDOW_MS) / 1000), this.options.timeoutMs ?? 50);
    } catch {
      this.options.onFallback?.();
      return this.local.take(key);
    }
    if (count <= this.options.perMinute) return 0;
    return Math.max(1, Math.ceil(((window + 1) * WINDOW_MS - now) / 1000));
  }
}

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no count within ${String(ms)} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
