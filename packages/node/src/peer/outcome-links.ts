import type { Logger, PeerTransport } from '@messaging-server/core';
import { Batcher } from '../batcher.js';
import { OUTCOMES_PATH, type OutcomeReport } from './internal-wire.js';

const REPORT_TIMEOUT_MS = 1500;
const MAX_BATCH_REPORTS = 1000;

/**
 * Outcomes of messages held here, batched per sender node, one request in flight per node. Needs nothing of the
 * node, so every part that settles a message (the pending queue's expiry among them) can be made after it.
 */
export class OutcomeLinks {
  private readonly links = new Map<string, Batcher<OutcomeReport>>();
  private stopped = false;

  constructor(private readonly deps: { transport: PeerTransport; log: Logger }) {}

  report(address: string, report: OutcomeReport): void {
    if (this.stopped) return;
    this.link(address).push(report);
  }

  get idle(): boolean {
    for (const link of this.links.values()) if (!link.idle) return false;
    return true;
  }

  get count(): number {
    return this.links.size;
  }

  /** Drops idle links to `address`, and to every address no registered node has any more. */
  forget(address: string, isMemberAddress: (address: string) => boolean): void {
    for (const [linkAddress, link] of this.links) {
      if (link.idle && (linkAddress === address || !isMemberAddress(linkAddress))) this.links.delete(linkAddress);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const link of this.links.values()) link.takeAll();
  }

  private link(address: string): Batcher<OutcomeReport> {
    let link = this.links.get(address);
    if (!link) {
      const { transport, log } = this.deps;
      link = new Batcher<OutcomeReport>(
        async (batch) => {
          try {
            await transport.post(address, OUTCOMES_PATH, { outcomes: batch }, { timeoutMs: REPORT_TIMEOUT_MS });
            return true;
          } catch (error) {
            // The sender's node is gone or unreachable, and with it the connections these outcomes were for.
            log.warn({ peer: address, count: batch.length, err: error }, 'outcome report failed');
            return false;
          }
        },
        (items) => log.warn({ peer: address, count: items.length }, 'outcome reports dropped'),
        MAX_BATCH_REPORTS,
      );
      this.links.set(address, link);
    }
    return link;
  }
}
