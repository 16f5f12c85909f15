import type { Envelope } from './envelope.js';
import { BoundedMap } from './bounded-map.js';
import { heldCostOf, type HeldBudget } from './held-budget.js';
import type { OutcomeReport } from './peer/index.js';

/** How long a report that came before its delivery answer waits for it (the answer's own timeout, with margin). */
const EARLY_REPORT_MS = 3000;
const EARLY_REPORTS_MAX = 10_000;

interface Kept {
  envelope: Envelope;
  peerId: string;
  cost: number;
}

/**
 * On the sender's node (contract v1.2): messages forwarded to a recipient whose connection has receipts on, written
 * there and not confirmed yet. Each stays here until the recipient's node reports its fate (confirmed, or to be
 * delivered again), or until that node fails, so a crash of the recipient's node loses none of them. Keyed by the
 * sender's connection and the message id, the two things an outcome report names. Their bytes count in the node's
 * held budget, like every other held message.
 */
export class KeptCopies {
  readonly #kept = new Map<string, Kept>();
  /** The keys kept per recipient node, so a failed node's copies are found without a scan of all of them. */
  readonly #byPeer = new Map<string, Set<string>>();
  /**
   * Reports for copies not kept (yet): a receipt can overtake the delivery answer that makes its copy kept (two
   * connections). Stale ones (the copy was already held or answered) are forgotten after EARLY_REPORT_MS.
   */
  readonly #early = new BoundedMap<string, { report: OutcomeReport; at: number }>(EARLY_REPORTS_MAX);

  constructor(private readonly budget: HeldBudget) {}

  get size(): number {
    return this.#kept.size;
  }

  /** False, keeping nothing, when the held budget would pass a cap, or the key is taken (an id sent twice at once). */
  keep(peerId: string, envelope: Envelope): boolean {
    if (envelope.id === undefined) return false;
    const key = keyOf(envelope.origin.cid, envelope.id);
    if (this.#kept.has(key)) return false;
    const cost = heldCostOf(envelope);
    if (!this.budget.reserve(envelope.from, envelope.to, cost)) return false;
    this.#kept.set(key, { envelope, peerId, cost });
    const keys = this.#byPeer.get(peerId);
    if (keys) keys.add(key);
    else this.#byPeer.set(peerId, new Set([key]));
    return true;
  }

  noteEarly(report: OutcomeReport, now = Date.now()): void {
    if (report.id !== undefined) this.#early.set(keyOf(report.cid, report.id), { report, at: now });
  }

  /** The report that came before this message's delivery answer, if one did. */
  takeEarly(envelope: Envelope, now = Date.now()): OutcomeReport | undefined {
    if (this.#early.size === 0 || envelope.id === undefined) return undefined;
    const key = keyOf(envelope.origin.cid, envelope.id);
    const early = this.#early.get(key);
    if (early === undefined) return undefined;
    this.#early.delete(key);
    return now - early.at <= EARLY_REPORT_MS ? early.report : undefined;
  }

  /** The copy an outcome report names, if it is still kept; it is no longer kept afterwards. */
  take(cid: string, id: string): Envelope | undefined {
    const key = keyOf(cid, id);
    const kept = this.#kept.get(key);
    if (!kept) return undefined;
    this.#kept.delete(key);
    const keys = this.#byPeer.get(kept.peerId);
    keys?.delete(key);
    if (keys?.size === 0) this.#byPeer.delete(kept.peerId);
    this.budget.release(kept.envelope.from, kept.envelope.to, kept.cost);
    return kept.envelope;
  }

  /** Every copy kept for messages written on `peerId` (it failed), in routing order. */
  takeFor(peerId: string): Envelope[] {
    const taken: Envelope[] = [];
    for (const key of this.#byPeer.get(peerId) ?? []) {
      const kept = this.#kept.get(key) as Kept;
      this.#kept.delete(key);
      this.budget.release(kept.envelope.from, kept.envelope.to, kept.cost);
      taken.push(kept.envelope);
    }
    this.#byPeer.delete(peerId);
    return taken.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
  }

  /** Drops the copies `orphaned` picks (a drain: their senders send them again from their next node). */
  discard(orphaned: (envelope: Envelope) => boolean): Envelope[] {
    const gone = [...this.#kept.values()].filter((k) => orphaned(k.envelope));
    for (const kept of gone) this.take(kept.envelope.origin.cid, kept.envelope.id as string);
    return gone.map((k) => k.envelope);
  }

  /** Drops everything (the node stops). */
  clear(): Envelope[] {
    const all = [...this.#kept.values()];
    this.#kept.clear();
    this.#byPeer.clear();
    for (const kept of all) this.budget.release(kept.envelope.from, kept.envelope.to, kept.cost);
    return all.map((k) => k.envelope);
  }
}

function keyOf(cid: string, id: string): string {
  return `${cid}\u0000${id}`;
}
