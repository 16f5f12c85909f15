import type { Logger, NodeRegistration } from '@messaging-server/core';

export interface LoadSources {
  connections(): number;
  pending(): number;
}

/**
 * Publishes `load/<nodeId>` for the gateways' least-loaded allocation: at most once per call (the owner calls it
 * every second), and only when the figures changed since the last successful write.
 */
export class LoadReporter {
  #last = '';

  constructor(
    private readonly registration: () => NodeRegistration | undefined,
    private readonly sources: LoadSources,
    private readonly maxConnections: number,
    private readonly log: Logger,
  ) {}

  /** The next publish writes even if nothing changed (a re-registration lost what was written). */
  invalidate(): void {
    this.#last = '';
  }

  async publish(force = false): Promise<void> {
    const registration = this.registration();
    if (!registration || registration.state === 'revoked') return;
    const connections = this.sources.connections();
    const pending = this.sources.pending();
    const signature = `${String(connections)}/${String(pending)}`;
    if (!force && signature === this.#last) return;
    this.#last = signature;
    try {
      await registration.putLoad({
        connections,
        pending,
        updatedAt: new Date().toISOString(),
        ...(this.maxConnections > 0 ? { maxConnections: this.maxConnections } : {}),
      });
    } catch (error) {
      this.#last = '';
      this.log.warn({ err: error }, 'load update failed');
    }
  }
}
