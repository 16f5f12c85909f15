/**
 * Per-connection rate limit: `ratePerSecond` tokens refill continuously up to `burst`.
 * Abuse tracking: a streak of RATE_LIMITED answers with no quiet second in between; once it has lasted
 * `abuseAfterMs` and rejected at least ratePerSecond × that time (the sender ran at ≥ 2× its rate), `take`
 * reports `abusive`.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private streakStart: number | undefined;
  private lastRejected = 0;
  private rejectedInStreak = 0;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly abuseAfterMs = 5000,
    now = Date.now(),
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes `cost` tokens (1 for a message, the frame's size for a byte bucket); a cost above the burst is capped to it. */
  take(now = Date.now(), cost = 1): 'ok' | 'limited' | 'abusive' {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    this.last = now;
    const need = Math.min(cost, this.burst);
    if (this.tokens >= need) {
      this.tokens -= need;
      return 'ok';
    }
    if (this.streakStart === undefined || now - this.lastRejected > 1000) {
      this.streakStart = now;
      this.rejectedInStreak = 0;
    }
    this.lastRejected = now;
    this.rejectedInStreak += need;
    const streakMs = now - this.streakStart;
    if (streakMs >= this.abuseAfterMs && this.rejectedInStreak >= (this.ratePerSecond * streakMs) / 1000) return 'abusive';
    return 'limited';
  }
}
