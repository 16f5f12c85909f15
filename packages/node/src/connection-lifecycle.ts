import type { WebSocket } from 'ws';
import type { ClosedBy } from './client-connection.js';

/** A client that has not answered our close frame by then is cut: ws alone would keep its socket and buffers 30 s. */
export const CLOSE_GRACE_MS = 5000;

/**
 * The close state every kind of client connection shares: closing (no more writes, no more frames read), closed
 * (the node was told, exactly once), and who ended it. Transports differ only in how they close and what they
 * learn when the other side goes away.
 */
export class ConnectionLifecycle {
  #closing = false;
  #closed = false;
  #closedBy: ClosedBy = 'network';
  #onClose: ((closedBy: ClosedBy) => void) | undefined;

  /** `finished` runs first when the connection is over, whether or not anyone listens yet. */
  constructor(private readonly finished?: () => void) {}

  get closing(): boolean {
    return this.#closing;
  }

  /** The one handler told when the connection is over. */
  listen(onClose: (closedBy: ClosedBy) => void): void {
    this.#onClose = onClose;
  }

  /** The node ends the connection: true the first time, false when it was already ending. */
  closeByNode(): boolean {
    if (this.#closing) return false;
    this.#closing = true;
    this.#closedBy = 'node';
    return true;
  }

  /** The transport is gone. Unless the node had already begun closing, `closedBy` says who ended it. */
  ended(closedBy: ClosedBy): void {
    if (!this.#closing) this.#closedBy = closedBy;
    this.#closing = true;
    this.finish();
  }

  /**
   * The node forgets the connection on the next tick, not when (or if) the client answers the close handshake; the
   * tick lets frames of the current turn see `closing` first.
   */
  finishSoon(): void {
    process.nextTick(() => this.finish());
  }

  private finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.finished?.();
    this.#onClose?.(this.#closedBy);
  }
}

/** ws reports 1006 when the connection ended without a close frame; any other code came in the client's close frame. */
export function closedByCode(code: number): ClosedBy {
  return code === 1006 ? 'network' : 'client';
}

/** Cuts a websocket whose client does not finish the close handshake within CLOSE_GRACE_MS. */
export function cutIfNotClosed(ws: WebSocket): void {
  const timer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
  timer.unref();
  ws.once('close', () => clearTimeout(timer));
}
