import type { SessionStore } from '@messaging-server/core';
import { beforeDeadline } from './deadline.js';

/** A valid userId that no user can hold for long: /readyz only reads it. */
export const READINESS_SENTINEL_USER_ID = '~readyz~';

/**
 * Whether the session store answers, probed with one cheap `get` bounded by `timeoutMs` and cached for `cacheMs`
 * so that frequent probes (kubelet, load balancers) do not turn into store traffic. Concurrent probes share one call.
 */
export class StoreProbe {
  private checkedAt = Number.NEGATIVE_INFINITY;
  private lastResult = false;
  private inFlight: Promise<boolean> | undefined;

  constructor(
    private readonly sessions: SessionStore,
    private readonly options: { timeoutMs: number; cacheMs: number; onError?: (error: unknown) => void },
  ) {}

  async reachable(): Promise<boolean> {
    if (Date.now() - this.checkedAt < this.options.cacheMs) return this.lastResult;
    this.inFlight ??= this.probe().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async probe(): Promise<boolean> {
    let ok: boolean;
    try {
      await beforeDeadline(this.sessions.get(READINESS_SENTINEL_USER_ID), Date.now() + this.options.timeoutMs, 'session store probe');
      ok = true;
    } catch (error) {
      this.options.onError?.(error);
      ok = false;
    }
    this.lastResult = ok;
    this.checkedAt = Date.now();
    return ok;
  }
}
