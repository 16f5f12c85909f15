import SockJS from 'sockjs-client';
import { Backoff, CLOSE_CODES, isTerminalClose, type JsonValue, type ServerFrame, type Session } from '@messaging-server/protocol';
import { postConnect, type SockJsSocket } from '@messaging-server/testkit';

export interface ContractMessage {
  from: string;
  id: string;
  content: JsonValue;
}

export type ContractOutcome = { kind: 'acked' } | { kind: 'error'; code: string };

interface Unanswered {
  to: string;
  content: JsonValue;
  resolve: (outcome: ContractOutcome) => void;
}

/** How many `(from, id)` pairs a receiver remembers to drop repeats (the contract asks for a bounded window). */
const SEEN_WINDOW = 4096;

/**
 * A client written from the wire contract alone, with sockjs-client and no SDK, as a third party would write one:
 * `/connect`, SockJS with the key, and on a recoverable close (4000–4499) or a dropped connection `/connect` again,
 * re-send every message still unanswered with its id, and drop repeats of `(from, id)` it already received.
 */
export class ContractClient {
  readonly received: ContractMessage[] = [];
  repeatsDropped = 0;
  welcomes: { nodeId: string; at: number }[] = [];
  closes: { code: number; reason: string; at: number }[] = [];
  private socket: SockJsSocket | undefined;
  private readonly unanswered = new Map<string, Unanswered>();
  private readonly seen = new Set<string>();
  private counter = 0;
  private stopped = false;
  private open = false;

  /** Called for each message received, after repeats were dropped. */
  onMessageHook: (message: ContractMessage) => void = () => undefined;

  constructor(
    readonly userId: string,
    private readonly gatewayUrl: string,
  ) {}

  get nodeId(): string | undefined {
    return this.open ? this.welcomes[this.welcomes.length - 1]?.nodeId : undefined;
  }

  /** Resolves on the first welcome. */
  async start(): Promise<void> {
    await this.connect([]);
  }

  /** Sends with a fresh id; resolves with the contract's answer for it, however many reconnects that takes. */
  send(to: string, content: JsonValue): Promise<ContractOutcome> {
    const id = `${this.userId}-${String(++this.counter)}`;
    return new Promise((resolve) => {
      this.unanswered.set(id, { to, content, resolve });
      if (this.open) this.write(id, to, content);
    });
  }

  /** A clean close: a close frame from the client, so the user has left. */
  stop(): void {
    this.stopped = true;
    this.socket?.close();
  }

  get pending(): number {
    return this.unanswered.size;
  }

  private async connect(avoid: string[]): Promise<void> {
    const backoff = new Backoff({ initialMs: 50, maxMs: 1000 });
    while (!this.stopped) {
      const answer = await postConnect(this.gatewayUrl, this.userId, { avoid }).catch(() => undefined);
      if (answer?.status === 200) {
        const welcomed = await this.openSocket(answer.body as Session);
        if (welcomed) return;
      }
      await new Promise((resolve) => setTimeout(resolve, backoff.next()));
    }
  }

  /** Opens SockJS for a session; true once welcomed, false if it closed first. */
  private openSocket(session: Session): Promise<boolean> {
    const url = new URL(session.listeningAddress);
    url.searchParams.set('userId', session.userId);
    url.searchParams.set('listeningKey', session.listeningKey);
    const socket = new SockJS(url.toString(), undefined, { transports: ['websocket'] }) as unknown as SockJsSocket;
    this.socket = socket;
    return new Promise((resolve) => {
      socket.onmessage = (event) => {
        const frame = JSON.parse(String(event.data)) as ServerFrame;
        if (frame.type === 'welcome') {
          this.open = true;
          this.welcomes.push({ nodeId: frame.nodeId, at: Date.now() });
          // Everything still unanswered goes again, with the same id, in the order it was first sent.
          for (const [id, m] of this.unanswered) this.write(id, m.to, m.content);
          resolve(true);
        } else this.onFrame(frame);
      };
      socket.onclose = (event) => {
        const wasOpen = this.open;
        this.open = false;
        this.closes.push({ code: event.code, reason: event.reason, at: Date.now() });
        resolve(false);
        if (!wasOpen || this.stopped || isTerminalClose(event.code)) return;
        // A drain (4000), any other recoverable code, or a drop: come back through /connect, away from this node.
        const avoid = event.code === CLOSE_CODES.node_shutdown ? [] : [session.nodeId];
        void this.connect(avoid);
      };
    });
  }

  private onFrame(frame: ServerFrame): void {
    if (frame.type === 'message') {
      const key = `${frame.from}\u0000${frame.id ?? ''}`;
      if (frame.id !== undefined && this.seen.has(key)) {
        this.repeatsDropped += 1;
        return;
      }
      if (frame.id !== undefined) this.remember(key);
      const message: ContractMessage = { from: frame.from, id: frame.id ?? '', content: frame.content };
      this.received.push(message);
      this.onMessageHook(message);
    } else if (frame.type === 'ack' || (frame.type === 'error' && frame.id !== undefined)) {
      const id = frame.id as string;
      const m = this.unanswered.get(id);
      if (!m) return;
      this.unanswered.delete(id);
      m.resolve(frame.type === 'ack' ? { kind: 'acked' } : { kind: 'error', code: frame.code });
    }
  }

  private remember(key: string): void {
    this.seen.add(key);
    if (this.seen.size > SEEN_WINDOW) {
      const oldest = this.seen.values().next();
      if (!oldest.done) this.seen.delete(oldest.value);
    }
  }

  private write(id: string, to: string, content: JsonValue): void {
    this.socket?.send(JSON.stringify({ type: 'message', to, content, id }));
  }
}
