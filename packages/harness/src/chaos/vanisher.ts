import WebSocket from 'ws';
import { postConnect } from '@messaging-server/testkit';
import type { ServerFrame, Session } from '@messaging-server/protocol';

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
    const answer = await postConnect(gatewayUrl, this.userId);
    if (answer.status !== 200) throw new Error(`/connect for ${this.userId} answered ${String(answer.status)}`);
    const session = answer.body as Session;
    const url = new URL(`${session.listeningAddress.replace(/^http/, 'ws').replace(/\/$/, '')}/websocket`);
    url.searchParams.set('userId', this.userId);
    url.searchParams.set('listeningKey', session.listeningKey);
    const ws = new WebSocket(url);
    this.ws = ws;
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (data) => {
        const frame = JSON.parse(String(data)) as ServerFrame;
        if (frame.type === 'welcome') {
          this.nodeId = frame.nodeId;
          resolve();
        } else if (frame.type === 'message') this.onMessage(frame.from, frame.content);
      });
      ws.on('close', (code) => reject(new Error(`${this.userId} closed with ${String(code)} before its welcome`)));
      ws.on('error', reject);
    });
  }

  /** Cuts the TCP connection without a close frame, and never comes back. */
  vanish(): void {
    this.ws?.terminate();
  }
}
