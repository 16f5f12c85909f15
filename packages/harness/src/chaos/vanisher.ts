import type WebSocket from 'ws';
import { connectSession, openSession, whenWelcomed } from '../wire.js';

/**
 * A user who will drop off the network and never come back: a raw websocket on the node's `<prefix>/websocket`
 * transport, so the run can cut its TCP connection without a close frame (the node sees 1006: a drop, so the user is
 * moving), and it never calls /connect again. It only receives; `onMessage` records each arrival.
 */
export class Vanisher {
  nodeId: string | undefined;
  private ws: WebSocket | undefined;

  constructor(
    readonly userId: string,
    private readonly onMessage: (from: string, content: unknown) => void,
  ) {}

  /** /connect, then the raw websocket; resolves on the welcome. */
  async start(gatewayUrl: string): Promise<void> {
    const session = await connectSession(gatewayUrl, { userId: this.userId }, { timeoutMs: 5000 });
    this.ws = openSession(session);
    const welcome = await whenWelcomed(this.ws, 'raw', (frame) => {
      if (frame.type === 'message') this.onMessage(frame.from, frame.content);
    });
    this.nodeId = welcome.nodeId;
  }

  /** Cuts the TCP connection without a close frame, and never comes back. */
  vanish(): void {
    this.ws?.terminate();
  }
}
