import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Named in the timeout error, so a failing test says what it was waiting for. */
  what?: string;
}

/** What a probe can return that means "not yet": every falsy value, so a count of 0 or an empty string never passes. */
type NotYet = false | undefined | null | 0 | '';

/**
 * Polls `probe` until it returns a truthy value, and returns that value. Tests use this instead of sleeps.
 * `false`, `undefined`, `null`, `0`, `NaN` and `''` all mean "not yet": a probe that returns a count or a measured
 * time must not pass on zero, so return an object (or a boolean and measure outside) when zero is a real answer.
 * Errors thrown by the probe count as "not yet"; the last one is reported on timeout.
 */
export async function waitFor<T>(probe: () => T | Promise<T>, options: WaitForOptions = {}): Promise<Exclude<T, NotYet>> {
  const { timeoutMs = 10_000, intervalMs = 25, what = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value as Exclude<T, NotYet>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const suffix = lastError instanceof Error ? `: last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${String(timeoutMs)} ms waiting for ${what}${suffix}`);
    }
    await sleep(intervalMs);
  }
}
