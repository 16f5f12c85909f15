/** A user on the node's raw `/websocket` endpoint (no SockJS envelope): the frames it got, and what it sends. */
import type WebSocket from 'ws';
import { openSession } from '@messaging-server/harness/wire';
import type { ServerFrame, Session } from '@messaging-server/protocol';
import { waitFor } from '@messaging-server/testkit';

let flushes = 0;

export class RawUser {
  readonly frames: ServerFrame[] = [];
  readonly ws: WebSocket;

  /** `receipts`: opened with `receipts=1` (contract v1.2), so written messages carry a seq. */
  constructor(
    readonly session: Session,
    receipts = false,
  ) {
    this.ws = openSession(session, { receipts });
    this.ws.on('message', (data) => this.frames.push(JSON.parse(String(data)) as ServerFrame));
    this.ws.on('error', () => undefined);
  }

  get userId(): string {
    return this.session.userId;
  }

  async welcomed(): Promise<this> {
    await waitFor(() => this.frames[0]?.type === 'welcome', { what: `${this.userId} welcome`, timeoutMs: 15_000 });
    return this;
  }

  /** Sends a frame as JSON, or a string as it is (to send what is not JSON). */
  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  ofType<K extends ServerFrame['type']>(type: K): Extract<ServerFrame, { type: K }>[] {
    return this.frames.filter((f): f is Extract<ServerFrame, { type: K }> => f.type === type);
  }

  answersFor(id: string): ServerFrame[] {
    return this.frames.filter((f) => (f.type === 'ack' || f.type === 'error') && f.id === id);
  }

  /** A ping answered: every frame the node wrote to this connection before it is here. */
  async flushed(): Promise<void> {
    const id = `flush-${String(process.pid)}-${String(++flushes)}`;
    this.send({ type: 'ping', id });
    await waitFor(() => this.frames.some((f) => f.type === 'pong' && f.id === id), { what: `${this.userId} pong` });
  }
}
