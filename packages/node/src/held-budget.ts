import type { Envelope } from './envelope.js';

/** Byte caps on messages a node holds for later: per recipient, per sender and for the whole node. */
export interface HeldLimits {
  perRecipientBytes: number;
  perSenderBytes: number;
  totalBytes: number;
}

/**
 * What one held message costs besides its text: the envelope, the queue entry and the map keys. Counting it means a
 * flood of tiny messages is bounded too, not only a few large ones.
 */
export const HELD_OVERHEAD_BYTES = 256;

/** The bytes one held message counts for: its frame's size (or its content's, for a forwarded one) plus the overhead. */
export function heldCostOf(envelope: Envelope): number {
  return (envelope.size > 0 ? envelope.size : JSON.stringify(envelope.content).length) + HELD_OVERHEAD_BYTES;
}

/**
 * The byte accounting of held messages (pending queues; users moving between nodes). A message is held only when
 * its recipient, its sender and the node all stay within their caps, so one sender cannot fill the node for the
 * others, nor one recipient take it all. Callers reserve before holding and release exactly what they reserved
 * when the message leaves (delivered, expired, failed).
 */
export class HeldBudget {
  private readonly byRecipient = new Map<string, number>();
  private readonly bySender = new Map<string, number>();
  private held = 0;

  constructor(readonly limits: HeldLimits) {}

  /** Bytes held on this node. */
  get total(): number {
    return this.held;
  }

  heldFor(recipient: string): number {
    return this.byRecipient.get(recipient) ?? 0;
  }

  heldFrom(sender: string): number {
    return this.bySender.get(sender) ?? 0;
  }

  /** Reserves `bytes` for a message from `sender` to `recipient`; false, with nothing reserved, when a cap would pass. */
  reserve(sender: string, recipient: string, bytes: number): boolean {
    const { perRecipientBytes, perSenderBytes, totalBytes } = this.limits;
    if (this.held + bytes > totalBytes) return false;
    if (this.heldFor(recipient) + bytes > perRecipientBytes) return false;
    if (this.heldFrom(sender) + bytes > perSenderBytes) return false;
    this.held += bytes;
    this.byRecipient.set(recipient, this.heldFor(recipient) + bytes);
    this.bySender.set(sender, this.heldFrom(sender) + bytes);
    return true;
  }

  release(sender: string, recipient: string, bytes: number): void {
    this.held -= bytes;
    decrease(this.byRecipient, recipient, bytes);
    decrease(this.bySender, sender, bytes);
  }
}

function decrease(map: Map<string, number>, key: string, bytes: number): void {
  const left = (map.get(key) ?? 0) - bytes;
  if (left > 0) map.set(key, left);
  else map.delete(key);
}
