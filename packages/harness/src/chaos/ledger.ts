/**
 * The fate of every message the chaos run sends, kept per stream (one sender → one recipient).
 *
 * A message is sent with a per-stream sequence number and ends in exactly one of:
 * - acked, and the recipient got it            → fine
 * - errored with a code (RELAY_FAILED, …)       → allowed, counted by code: the sender was told
 * - acked but never arrived at the recipient    → silently lost
 * - no answer at all (the SDK's TIMEOUT, or still unsettled at the end) → silently lost
 * The recipient side also checks that nothing arrives twice and that acked messages arrive in the order sent.
 */

/** Codes that mean "the server never answered": the sender was not told anything. */
const SILENT_CODES = new Set(['TIMEOUT']);

export interface MessageRecord {
  sentAt: number;
  settledAt?: number;
  fate: 'pending' | 'acked' | 'errored';
  code?: string;
  received: boolean;
}

interface Stream {
  records: MessageRecord[];
  /** Highest sequence number received so far. */
  maxReceived: number;
  /** Pairs [late, overtaken-by] of arrivals that came after a higher sequence number. */
  inversions: [number, number][];
  duplicates: number;
  unknown: number;
}

export interface LedgerTotals {
  sent: number;
  acked: number;
  errored: number;
  erroredByCode: Record<string, number>;
  /** Messages the recipient got (each counted once, whatever its send's fate). */
  delivered: number;
  /** Errored messages the recipient got anyway (CONNECTION_LOST means "fate unknown", so this is allowed there). */
  erroredButDeliveredByCode: Record<string, number>;
  silentlyLost: number;
  silentlyLostBy: { ackedNeverArrived: number; noAnswer: number; unsettled: number };
  /** Acked messages that arrived after an acked message sent later on the same stream. */
  ackedOutOfOrder: number;
  /** Any arrival after a later-sent message (includes messages whose send errored). */
  outOfOrderAny: number;
  duplicates: number;
  /** Arrivals with a sequence number that was never sent. */
  unknownArrivals: number;
  /** First few silent losses, for the report and for debugging. */
  examples: { stream: string; seq: number; why: string; sentAt: number }[];
}

export class Ledger {
  private readonly streams = new Map<string, Stream>();

  constructor(private readonly now: () => number = () => Date.now()) {}

  private stream(id: string): Stream {
    let stream = this.streams.get(id);
    if (!stream) {
      stream = { records: [], maxReceived: 0, inversions: [], duplicates: 0, unknown: 0 };
      this.streams.set(id, stream);
    }
    return stream;
  }

  /** Records a send and returns its sequence number (1, 2, …) on that stream. */
  send(streamId: string): number {
    const stream = this.stream(streamId);
    stream.records.push({ sentAt: this.now(), fate: 'pending', received: false });
    return stream.records.length;
  }

  settle(streamId: string, seq: number, code?: string): void {
    const record = this.stream(streamId).records[seq - 1];
    if (!record || record.fate !== 'pending') return;
    record.settledAt = this.now();
    if (code === undefined) record.fate = 'acked';
    else {
      record.fate = 'errored';
      record.code = code;
    }
  }

  receive(streamId: string, seq: number): void {
    const stream = this.stream(streamId);
    const record = stream.records[seq - 1];
    if (!record) {
      stream.unknown++;
      return;
    }
    if (record.received) {
      stream.duplicates++;
      return;
    }
    record.received = true;
    if (seq < stream.maxReceived) stream.inversions.push([seq, stream.maxReceived]);
    stream.maxReceived = Math.max(stream.maxReceived, seq);
  }

  /** True when every send on the stream has its answer and every acked one arrived. */
  streamDone(streamId: string): boolean {
    return this.stream(streamId).records.every((r) => r.fate !== 'pending' && (r.fate !== 'acked' || r.received));
  }

  /** The stream's messages: when each was sent and answered, how, and whether it arrived. */
  recordsOf(streamId: string): readonly Readonly<MessageRecord>[] {
    return this.stream(streamId).records;
  }

  get unsettled(): number {
    let count = 0;
    for (const stream of this.streams.values()) for (const r of stream.records) if (r.fate === 'pending') count++;
    return count;
  }

  get ackedNotReceived(): number {
    let count = 0;
    for (const stream of this.streams.values()) for (const r of stream.records) if (r.fate === 'acked' && !r.received) count++;
    return count;
  }

  /** Errors by code whose answer came in [fromMs, toMs), on the ledger's clock. */
  errorsBetween(fromMs: number, toMs: number): Record<string, number> {
    const byCode: Record<string, number> = {};
    for (const stream of this.streams.values()) {
      for (const r of stream.records) {
        if (r.fate !== 'errored' || r.settledAt === undefined || r.settledAt < fromMs || r.settledAt >= toMs) continue;
        const code = r.code ?? 'UNKNOWN';
        byCode[code] = (byCode[code] ?? 0) + 1;
      }
    }
    return byCode;
  }

  /** How long sends made in [fromMs, toMs) waited for their answer (ack or error), in ms. */
  answerTimesBetween(fromMs: number, toMs: number): number[] {
    const times: number[] = [];
    for (const stream of this.streams.values()) {
      for (const r of stream.records) {
        if (r.settledAt !== undefined && r.sentAt >= fromMs && r.sentAt < toMs) times.push(r.settledAt - r.sentAt);
      }
    }
    return times;
  }

  /** Sends answered with `code` in [fromMs, toMs): their stream and when they were sent. */
  errorsOf(code: string, fromMs: number, toMs: number): { stream: string; sentAt: number }[] {
    const out: { stream: string; sentAt: number }[] = [];
    for (const [id, stream] of this.streams) {
      for (const r of stream.records) {
        if (r.code === code && r.settledAt !== undefined && r.settledAt >= fromMs && r.settledAt < toMs) out.push({ stream: id, sentAt: r.sentAt });
      }
    }
    return out;
  }

  /** When sends were answered with `code` in [fromMs, toMs), on the ledger's clock, in order. */
  errorTimes(code: string, fromMs: number, toMs: number): number[] {
    const times: number[] = [];
    for (const stream of this.streams.values()) {
      for (const r of stream.records) {
        if (r.code === code && r.settledAt !== undefined && r.settledAt >= fromMs && r.settledAt < toMs) times.push(r.settledAt);
      }
    }
    return times.sort((x, y) => x - y);
  }

  /** Totals over the streams `include` accepts (default: all), and within them the records `keep` accepts. */
  totals(include: (streamId: string) => boolean = () => true, keep: (streamId: string, record: MessageRecord) => boolean = () => true): LedgerTotals {
    const t: LedgerTotals = {
      sent: 0,
      acked: 0,
      errored: 0,
      erroredByCode: {},
      delivered: 0,
      erroredButDeliveredByCode: {},
      silentlyLost: 0,
      silentlyLostBy: { ackedNeverArrived: 0, noAnswer: 0, unsettled: 0 },
      ackedOutOfOrder: 0,
      outOfOrderAny: 0,
      duplicates: 0,
      unknownArrivals: 0,
      examples: [],
    };
    const lose = (stream: string, seq: number, record: MessageRecord, why: keyof LedgerTotals['silentlyLostBy']): void => {
      t.silentlyLost++;
      t.silentlyLostBy[why]++;
      if (t.examples.length < 20) t.examples.push({ stream, seq, why, sentAt: record.sentAt });
    };
    for (const [id, stream] of this.streams) {
      if (!include(id)) continue;
      t.duplicates += stream.duplicates;
      t.unknownArrivals += stream.unknown;
      t.outOfOrderAny += stream.inversions.length;
      for (const [late, overtaker] of stream.inversions) {
        if (stream.records[late - 1]?.fate === 'acked' && stream.records[overtaker - 1]?.fate === 'acked') t.ackedOutOfOrder++;
      }
      stream.records.forEach((record, index) => {
        if (!keep(id, record)) return;
        const seq = index + 1;
        t.sent++;
        if (record.received) t.delivered++;
        if (record.fate === 'acked') {
          t.acked++;
          if (!record.received) lose(id, seq, record, 'ackedNeverArrived');
        } else if (record.fate === 'pending') {
          lose(id, seq, record, 'unsettled');
        } else if (SILENT_CODES.has(record.code ?? '')) {
          lose(id, seq, record, 'noAnswer');
        } else {
          const code = record.code ?? 'UNKNOWN';
          t.errored++;
          t.erroredByCode[code] = (t.erroredByCode[code] ?? 0) + 1;
          if (record.received) t.erroredButDeliveredByCode[code] = (t.erroredButDeliveredByCode[code] ?? 0) + 1;
        }
      });
    }
    return t;
  }
}
