import type { Envelope } from './envelope.js';

/** How long a message waits for a node that a session names but this node's registry view does not know yet. */
export const UNKNOWN_NODE_WAIT_MS = 1000;

/**
 * Messages for a node that a session names and this node's registry view does not hold yet: it just registered (our
 * watch lags the gateway's by a few ms) or it left (crashed, drained). They wait for it, in order, up to
 * UNKNOWN_NODE_WAIT_MS; then `timedOut` gets them (their recipients count as moving).
 */
export class NodeWaits {
  readonly #waiting = new Map<string, { envelopes: Envelope[]; timer: NodeJS.Timeout }>();

  constructor(private readonly timedOut: (envelopes: Envelope[]) => void) {}

  get size(): number {
    return this.#waiting.size;
  }

  /** Adds to an existing wait; false when none runs for that node (the caller decides whether to start one). */
  join(nodeId: string, envelope: Envelope): boolean {
    const waiting = this.#waiting.get(nodeId);
    waiting?.envelopes.push(envelope);
    return waiting !== undefined;
  }

  start(nodeId: string, envelope: Envelope): void {
    const timer = setTimeout(() => this.timedOut(this.take(nodeId)), UNKNOWN_NODE_WAIT_MS);
    timer.unref();
    this.#waiting.set(nodeId, { envelopes: [envelope], timer });
  }

  /** The node arrived (or the wait ended): what waited for it, in order. */
  take(nodeId: string): Envelope[] {
    const waiting = this.#waiting.get(nodeId);
    if (!waiting) return [];
    clearTimeout(waiting.timer);
    this.#waiting.delete(nodeId);
    return waiting.envelopes;
  }

  clear(): void {
    for (const waiting of this.#waiting.values()) clearTimeout(waiting.timer);
    this.#waiting.clear();
  }
}
