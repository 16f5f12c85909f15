import type { JsonValue } from '@messaging-server/protocol';
import { MessagingError, type MessagingErrorCode } from './errors.js';
import { randomIdPrefix } from './message-ids.js';
import type { Clock } from './transport.js';

interface PendingSend {
  id: string;
  frame: string;
  /** Written to a connection at least once: if it fails now, its fate is unknown (CONNECTION_LOST). */
  written: boolean;
  resolve: () => void;
  reject: (error: MessagingError) => void;
  timer: unknown;
}

/**
 * The sends of one client: queued while there is no open connection (in order, bounded), then in flight until the
 * node's ack or error. Every send settles exactly once: answered, timed out, or failed with the connection.
 */
export class Outbox {
  #queue: PendingSend[] = [];
  readonly #inflight = new Map<string, PendingSend>();
  /**
   * Makes this client's message ids unique across its instances, so receivers never take a new id for a repeat. Not
   * from options.random (jitter, which apps and tests may pin): two instances of one user with the same prefix would
   * reuse ids, and a recipient would drop the second one's messages as repeats.
   */
  readonly #idPrefix = randomIdPrefix();
  #counter = 0;

  constructor(
    private readonly clock: Clock,
    private readonly maxQueue: number,
    private readonly maxFrameBytes = Number.POSITIVE_INFINITY,
  ) {}

  /** Gives `fields` a fresh id and queues the frame; MESSAGE_TOO_LARGE at once if it is over the byte limit. */
  request(fields: Record<string, JsonValue>, timeoutMs: number, bounded: boolean): Promise<void> {
    const id = `${this.#idPrefix}.${String(++this.#counter)}`;
    const frame = JSON.stringify({ ...fields, id });
    if (new TextEncoder().encode(frame).length > this.maxFrameBytes) {
      return Promise.reject(new MessagingError('MESSAGE_TOO_LARGE', `frame is over ${this.maxFrameBytes} bytes`, { messageId: id }));
    }
    return this.enqueue(id, frame, timeoutMs, bounded);
  }

  get queuedCount(): number {
    return this.#queue.length;
  }

  get inflightCount(): number {
    return this.#inflight.size;
  }

  /** Queues a send whose deadline runs from now. Rejects at once with SEND_QUEUE_FULL when `bounded` and full. */
  enqueue(id: string, frame: string, timeoutMs: number, bounded: boolean): Promise<void> {
    if (bounded && this.#queue.length >= this.maxQueue) {
      return Promise.reject(
        new MessagingError('SEND_QUEUE_FULL', `send queue is at its limit of ${this.maxQueue}`, { messageId: id }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const pending: PendingSend = { id, frame, written: false, resolve, reject, timer: undefined };
      pending.timer = this.clock.setTimeout(() => {
        this.#queue = this.#queue.filter((p) => p !== pending);
        this.#inflight.delete(id);
        reject(new MessagingError('TIMEOUT', `no answer within ${timeoutMs} ms`, { messageId: id }));
      }, timeoutMs);
      this.#queue.push(pending);
    });
  }

  /** Writes every queued send, in order; one that cannot be written fails with CONNECTION_LOST. */
  flush(write: (frame: string) => void): void {
    const queued = this.#queue;
    this.#queue = [];
    for (const pending of queued) {
      this.#inflight.set(pending.id, pending);
      pending.written = true;
      try {
        write(pending.frame);
      } catch (error) {
        this.#inflight.delete(pending.id);
        this.clock.clearTimeout(pending.timer);
        pending.reject(new MessagingError('CONNECTION_LOST', String(error), { messageId: pending.id }));
      }
    }
  }

  /** Settles the in-flight send with this id (ack: no error). False if there is none. */
  settle(id: string, error?: MessagingError): boolean {
    const pending = this.#inflight.get(id);
    if (!pending) return false;
    this.#inflight.delete(id);
    this.clock.clearTimeout(pending.timer);
    if (error) pending.reject(error);
    else pending.resolve();
    return true;
  }

  /**
   * The connection dropped before these sends were answered: back to the head of the queue, in the order they were
   * first written, to go again with the same ids after the next welcome (receivers drop repeats). Their deadlines run on.
   */
  requeueInflight(): void {
    const inflight = [...this.#inflight.values()];
    this.#inflight.clear();
    this.#queue = [...inflight, ...this.#queue];
  }

  /** Fails every send in flight: their fate is unknown (the node may have relayed them). */
  failInflight(code: MessagingErrorCode, message: string): void {
    const inflight = [...this.#inflight.values()];
    this.#inflight.clear();
    for (const pending of inflight) {
      this.clock.clearTimeout(pending.timer);
      pending.reject(new MessagingError(code, message, { messageId: pending.id }));
    }
  }

  /**
   * Fails every queued send (the client stopped). One that was written before, whose fate is unknown, fails with
   * `writtenCode` when given.
   */
  failQueued(code: MessagingErrorCode, message: string, writtenCode: MessagingErrorCode = code): void {
    const queued = this.#queue;
    this.#queue = [];
    for (const pending of queued) {
      this.clock.clearTimeout(pending.timer);
      pending.reject(new MessagingError(pending.written ? writtenCode : code, message, { messageId: pending.id }));
    }
  }
}
