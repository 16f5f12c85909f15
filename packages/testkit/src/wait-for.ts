import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Named in the timeout error, so a failing test says what it was waiting for. */
  what?: string;
}

/**
 * Polls `probe` until it returns a value other than undefined/false, and returns that value. Tests use this
 * instead of sleeps. Errors thrown by the probe count as "not yet"; the last one is reported on timeout.
 */
export async function waitFor<T>(probe: () => T | Promise<T>, options: WaitForOptions = {}): Promise<Exclude<T, false | undefined>> {
  const { timeoutMs = 10_000, intervalMs = 25, what = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value as Exclude<T, false | undefined>;
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
