/**
 * A token bucket per client IP: `perMinute` tokens refill evenly over a minute, up to `perMinute`. The table is
 * bounded: past `maxEntries` the least recently seen IPs are forgotten (they come back with a full bucket), so a
 * flood from many addresses costs a fixed amount of memory.
 */
export class IpRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; last: number }>();
  private readonly ratePerMs: number;

  constructor(
    private readonly perMinute: number,
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {
    this.ratePerMs = perMinute / 60_000;
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Takes one token for `ip`. Returns 0 when allowed, else the seconds until a token is back. */
  take(ip: string): number {
    const now = this.now();
    const bucket = this.buckets.get(ip);
    let tokens = this.perMinute;
    if (bucket) {
      tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.last) * this.ratePerMs);
      // Re-inserted, so Map order stays least-recently-seen first.
      this.buckets.delete(ip);
    }
    const allowed = tokens >= 1;
    if (allowed) tokens -= 1;
    this.buckets.set(ip, { tokens, last: now });
    if (this.buckets.size > this.maxEntries) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    return allowed ? 0 : Math.max(1, Math.ceil((1 - tokens) / this.ratePerMs / 1000));
  }
}
