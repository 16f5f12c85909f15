/** memcached reads an exptime above 30 days as an absolute Unix time, so relative TTLs stop just below it. */
export const MAX_SESSION_TTL_SECONDS = 60 * 60 * 24 * 30;

/**
 * Whole seconds from 1 to 30 days. A fraction rounds up (a record never lives shorter than asked); zero, negative
 * or non-finite TTLs are programming errors (0 would mean "never expire" to memcached).
 */
export function normalizeTtlSeconds(ttlSeconds: number): number {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    throw new RangeError(`session ttl must be a positive number of seconds, got ${String(ttlSeconds)}`);
  }
  return Math.min(Math.ceil(ttlSeconds), MAX_SESSION_TTL_SECONDS);
}
